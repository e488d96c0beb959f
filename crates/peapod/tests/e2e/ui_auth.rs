//! The topology page's logins, end to end over HTTPS with curl: `peapod ui`'s one-time link
//! sets a Secure, HttpOnly, SameSite=Strict session cookie for the admin, which reads the API
//! only beside `X-Peapod-UI: 1`; a service account token logs in with that account's rights
//! (RBAC decides, the audit log names the account) until the account is deleted; logout and
//! an agent restart end sessions (a logout whose body comes late too: HTTP/2 answers wait for
//! the body); the link route answers on the Unix socket only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::kubectl::start_with_kubectl;
use crate::common::*;
use crate::service_account_tokens::admin_ca;

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: shown\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// The HTTPS listener of a test agent, as a browser reaches it.
struct Site {
    origin: String,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

struct Answer {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, value)| value.as_str())
    }

    /// The `name=value` of the session cookie the answer sets.
    fn cookie(&self) -> String {
        let set = self.header("set-cookie");
        assert!(
            set.starts_with("peapod_session="),
            "no session cookie: {set}"
        );
        set.split(';').next().unwrap().to_owned()
    }
}

impl Site {
    fn of(agent: &Agent) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, admin_ca(agent)).unwrap();
        let server = &kubeconfig(agent)["clusters"][0]["cluster"]["server"];
        Site {
            origin: server.as_str().unwrap().to_owned(),
            ca,
            _dir: dir,
        }
    }

    /// curl at `url` (a path of the site, or a whole URL), with `args`.
    fn curl(&self, url: &str, args: &[&str]) -> Answer {
        let out = self
            .curl_command(url, args)
            .stdin(Stdio::null())
            .output()
            .expect("running curl");
        answer(url, out)
    }

    /// `curl -i` at `url` trusting the agent's CA alone, with `args`.
    fn curl_command(&self, url: &str, args: &[&str]) -> Command {
        let url = match url.starts_with('/') {
            true => format!("{}{url}", self.origin),
            false => url.to_owned(),
        };
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-i", "--max-time", "10", "--cacert"])
            .arg(&self.ca)
            .args(args)
            .arg(url);
        command
    }

    /// An API or page request with the session `cookie`, and the page's header if `marked`.
    fn with_cookie(&self, path: &str, cookie: &str, marked: bool) -> Answer {
        let mut args = vec!["--cookie", cookie];
        if marked {
            args.extend(["-H", "X-Peapod-UI: 1"]);
        }
        self.curl(path, &args)
    }

    fn post_form(&self, path: &str, form: &str, cookie: Option<&str>) -> Answer {
        let origin = format!("Origin: {}", self.origin);
        let mut args = vec!["-H", &origin, "--data-urlencode", form];
        if let Some(cookie) = cookie {
            args.extend(["--cookie", cookie]);
        }
        self.curl(path, &args)
    }

    /// A form POST over HTTP/2 whose body follows its headers half a second later, as from a
    /// slow client: the answer must wait for it (an answer before the body resets the stream,
    /// and curl fails the request).
    fn post_slow_form(&self, path: &str, form: &str, cookie: &str) -> Answer {
        let origin = format!("Origin: {}", self.origin);
        let form_type = "Content-Type: application/x-www-form-urlencoded";
        let args = [
            "--http2", "-X", "POST", "-T", "-", "--cookie", cookie, "-H", &origin, "-H", form_type,
        ];
        let mut curl = self
            .curl_command(path, &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running curl");
        let mut stdin = curl.stdin.take().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        use std::io::Write;
        stdin.write_all(form.as_bytes()).unwrap();
        drop(stdin);
        answer(path, curl.wait_with_output().unwrap())
    }
}

/// What a curl at `url` answered; fails the test when curl failed.
fn answer(url: &str, out: std::process::Output) -> Answer {
    assert!(out.status.success(), "curl {url}: {}", text(&out.stderr));
    parse(&text(&out.stdout))
}

/// curl -i's output: the status line, the headers, the body.
fn parse(output: &str) -> Answer {
    let (head, body) = output.split_once("\r\n\r\n").unwrap_or((output, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Answer {
        code: code.unwrap_or(0),
        headers,
        body: body.to_owned(),
    }
}

fn pod_names(list: &Answer) -> Vec<String> {
    let list: Value = serde_json::from_str(&list.body).expect("a PodList");
    assert_eq!(list["kind"], "PodList", "{list}");
    let items = list["items"].as_array().unwrap();
    let names = items
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap());
    names.map(str::to_owned).collect()
}

/// The url `peapod ui --json` prints; its text form says how to use it.
fn login_link(agent: &Agent, site: &Site) -> String {
    let printed: Value = serde_json::from_str(&agent.ok(&["ui", "--json"])).unwrap();
    let url = printed["url"].as_str().unwrap().to_owned();
    let prefix = format!("{}/ui/login?code=", site.origin);
    assert!(url.starts_with(&prefix), "{url} is not under {prefix}");
    let text = agent.ok(&["ui"]);
    let expected = "Open this link in a browser within 10 minutes; it works once:\n";
    assert!(text.starts_with(expected), "{text}");
    let printed = text.trim_end().lines().last().unwrap_or_default();
    assert!(printed.starts_with(&prefix) && printed != url, "{text}");
    url
}

#[test]
fn a_login_link_opens_one_admin_session_for_the_page_and_the_api() {
    let (mut agent, kubectl) = start_with_kubectl();
    kubectl.apply(POD);
    agent.wait_running("shown");
    let site = Site::of(&agent);

    let url = login_link(&agent, &site);
    let login = site.curl(&url, &[]);
    assert_eq!((login.code, login.header("location")), (303, "/ui/"));
    let set = login.header("set-cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attribute), "{set}");
    }
    let csp = login.header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let cookie = login.cookie();
    let again = site.curl(&url, &[]);
    assert_eq!(again.code, 401, "the code works once");
    assert!(again.body.contains("already used"), "{}", again.body);

    let listed = site.with_cookie(PODS, &cookie, true);
    assert_eq!(listed.code, 200, "{}", listed.body);
    assert_eq!(pod_names(&listed), ["shown"]);
    let unmarked = site.with_cookie(PODS, &cookie, false);
    assert_eq!(unmarked.code, 401, "a cookie alone is no credential");
    let anonymous = site.curl("/ui/", &[]);
    assert_eq!(
        (anonymous.code, anonymous.header("location")),
        (303, "/ui/login")
    );
    let page = site.with_cookie("/ui/", &cookie, false);
    assert_eq!(page.code, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");

    login_links_are_refused_over_https(&agent, &site);
    let logout = site.post_slow_form("/ui/logout", "x=1", &cookie);
    assert_eq!((logout.code, logout.header("location")), (303, "/ui/login"));
    assert_eq!(site.with_cookie(PODS, &cookie, true).code, 401);

    let cookie = site.curl(&login_link(&agent, &site), &[]).cookie();
    assert_eq!(site.with_cookie(PODS, &cookie, true).code, 200);
    agent.kill_and_restart();
    assert_eq!(
        site.with_cookie(PODS, &cookie, true).code,
        401,
        "sessions live in the agent's memory"
    );
    agent.delete_and_check("shown", "1");
}

/// `POST /ui/login-links` with the admin's client certificate over HTTPS gets nothing.
fn login_links_are_refused_over_https(agent: &Agent, site: &Site) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = admin_certificate(agent, dir.path());
    let args = ["-X", "POST", "--cert", &cert, "--key", &key];
    let refused = site.curl("/ui/login-links", &args);
    assert!([403, 404].contains(&refused.code), "{}", refused.body);
    assert!(!refused.body.contains("code="), "{}", refused.body);
}

/// The admin's client certificate and key of the kubeconfig, as files under `dir`.
fn admin_certificate(agent: &Agent, dir: &Path) -> (String, String) {
    use base64::Engine;
    let config = kubeconfig(agent);
    let user = &config["users"][0]["user"];
    let write = |name: &str, field: &str| {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(user[field].as_str().unwrap())
            .unwrap();
        let file = dir.join(name);
        std::fs::write(&file, pem).unwrap();
        file.to_str().unwrap().to_owned()
    };
    (
        write("admin.crt", "client-certificate-data"),
        write("admin.key", "client-key-data"),
    )
}

fn kubeconfig(agent: &Agent) -> Value {
    let path = agent.path().join("var/lib/peapod/kubeconfig.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_service_account_token_logs_in_with_the_accounts_rights_until_it_is_deleted() {
    let (mut agent, kubectl) = start_with_kubectl();
    kubectl.apply(POD);
    agent.wait_running("shown");
    let site = Site::of(&agent);
    kubectl.ok(&["create", "serviceaccount", "viewer"]);
    let bind = "--serviceaccount=default:viewer";
    kubectl.ok(&[
        "create",
        "rolebinding",
        "viewer",
        "--clusterrole=view",
        bind,
    ]);
    let token = kubectl.ok(&["create", "token", "viewer"]);

    let refused = site.post_form("/ui/login", "token=not-a-token", None);
    assert_eq!(refused.code, 401);
    assert!(
        refused.body.contains("The token was refused."),
        "{}",
        refused.body
    );
    let login = site.post_form("/ui/login", &format!("token={}", token.trim()), None);
    assert_eq!(
        (login.code, login.header("location")),
        (303, "/ui/"),
        "{}",
        login.body
    );
    let cookie = login.cookie();

    let listed = site.with_cookie(PODS, &cookie, true);
    assert_eq!(listed.code, 200, "{}", listed.body);
    assert_eq!(pod_names(&listed), ["shown"]);
    let elsewhere = site.with_cookie("/api/v1/namespaces/kube-system/pods", &cookie, true);
    assert_eq!(elsewhere.code, 403, "{}", elsewhere.body);
    let user = "system:serviceaccount:default:viewer";
    assert!(elsewhere.body.contains(user), "{}", elsewhere.body);
    let log = without_colours(&agent.agent_log());
    let audited = log.lines().any(|line| {
        line.contains("peapod::audit")
            && line.contains(&format!("user=\"{user}\""))
            && line.contains(&format!("path=\"{PODS}\""))
            && line.contains("code=200")
    });
    assert!(
        audited,
        "the audit log names the session's user:\n{}",
        tail(&log, 40)
    );

    kubectl.ok(&["delete", "serviceaccount", "viewer"]);
    assert_eq!(site.with_cookie(PODS, &cookie, true).code, 401);
    let page = site.with_cookie("/ui/", &cookie, false);
    assert_eq!((page.code, page.header("location")), (303, "/ui/login"));

    agent.set_env("PEAPOD_API_LISTEN", "off");
    agent.kill_and_restart();
    let out = agent.cli(&["ui"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("serves no HTTPS"), "{stderr}");
    agent.delete_and_check("shown", "1");
}
