//! The page's files (assets/: index.html, login.html, app.css, ES modules), embedded in the
//! binary so that nothing is fetched at run time, with the content type each is served as,
//! and the login page with the server's message put in its `{{message}}`.

use std::borrow::Cow;

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "src/agent/ui/assets/"]
struct Files;

/// Where login.html shows why a login failed.
const MESSAGE_PLACEHOLDER: &str = "{{message}}";

/// An embedded file and its content type.
pub struct Asset {
    pub body: Cow<'static, [u8]>,
    pub content_type: &'static str,
}

/// The file at `path` under assets/, if there is one.
pub fn get(path: &str) -> Option<Asset> {
    let file = Files::get(path)?;
    Some(Asset {
        body: file.data,
        content_type: content_type(path),
    })
}

/// Whether `path` may be served without a session: stylesheets only (the login page's look),
/// never the page or the scripts that read the API.
pub fn is_public(path: &str) -> bool {
    content_type(path).starts_with("text/css")
}

/// login.html with `message` (escaped) where it shows errors.
pub fn login_page(message: &str) -> String {
    let page = Files::get("login.html").map_or_else(
        || Cow::Borrowed(&b"<!doctype html><p>{{message}}</p>"[..]),
        |file| file.data,
    );
    String::from_utf8_lossy(&page).replace(MESSAGE_PLACEHOLDER, &escape_html(message))
}

/// The content type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_the_login_form_are_embedded() {
        let index = get("index.html").expect("index.html");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        let login = login_page("");
        assert!(login.contains("<form"), "{login}");
        assert!(login.contains("name=\"token\""), "{login}");
        assert!(get("nope.js").is_none());
    }

    #[test]
    fn the_message_is_escaped_into_the_login_page() {
        let page = login_page("<b>\"no\" & 'never'</b>");
        assert!(
            page.contains("&lt;b&gt;&quot;no&quot; &amp; &#39;never&#39;&lt;/b&gt;"),
            "{page}"
        );
        assert!(!page.contains(MESSAGE_PLACEHOLDER));
    }

    #[test]
    fn only_stylesheets_are_public() {
        assert!(is_public("app.css"));
        for private in [
            "index.html",
            "",
            "main.js",
            "api.js",
            "login.html",
            "x.json",
        ] {
            assert!(!is_public(private), "{private}");
        }
        let login = login_page("");
        assert!(
            login.contains("<link rel=\"stylesheet\" href=\"/ui/app.css\">"),
            "{login}"
        );
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("main.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("icons/pod.SVG"), "image/svg+xml");
        assert_eq!(content_type("README"), "application/octet-stream");
    }
}
