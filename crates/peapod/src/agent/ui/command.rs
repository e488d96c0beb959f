//! `peapod ui`: asks the agent, over its Unix socket, for a one-time login link to the
//! topology page and prints it (as Jupyter prints its token link), or `{"url": …}` with
//! `--json`.

use std::io::Write;
use std::path::PathBuf;

use hyper::Method;
use peapod_cli::{Call, Client, ClientError};
use serde::Deserialize;

use super::links::PATH;

#[derive(Debug, thiserror::Error)]
pub enum UiCommandError {
    #[error("{0}")]
    NoHttps(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("writing the link: {0}")]
    Write(#[from] std::io::Error),
}

#[derive(Debug, Deserialize)]
struct LoginLink {
    url: String,
}

/// Asks the agent at `socket` for a link and prints it on `out`.
pub async fn run(socket: PathBuf, json: bool, out: &mut impl Write) -> Result<(), UiCommandError> {
    let url = login_link(socket).await?;
    print_link(&url, json, out)?;
    Ok(())
}

async fn login_link(socket: PathBuf) -> Result<String, UiCommandError> {
    let reply = Client::new(socket)
        .send(Call::new(Method::POST, PATH))
        .await?;
    match reply.json::<LoginLink>().await {
        Ok(link) => Ok(link.url),
        Err(ClientError::Api(api)) if api.is_not_found() => {
            Err(UiCommandError::NoHttps(api.message))
        }
        Err(err) => Err(err.into()),
    }
}

fn print_link(url: &str, json: bool, out: &mut impl Write) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::json!({ "url": url }))
    } else {
        writeln!(
            out,
            "Open this link in a browser within 10 minutes; it works once:\n{url}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_prints_for_people_or_as_json() {
        let mut text = Vec::new();
        print_link("https://h:1/ui/login?code=c", false, &mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "Open this link in a browser within 10 minutes; it works once:\nhttps://h:1/ui/login?code=c\n"
        );
        let mut json = Vec::new();
        print_link("https://h:1/ui/login?code=c", true, &mut json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"url": "https://h:1/ui/login?code=c"})
        );
    }
}
