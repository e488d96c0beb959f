//! The topology page's logins, in the agent's memory: the one-time codes `peapod ui` hands
//! out (valid 10 minutes, once), and the sessions a code or a token login opens (ended after
//! 12 hours unused, by a logout, or by an agent restart). Codes and session ids are 32 random
//! bytes from the OS, base64url; they are never logged, not even in errors.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use peapod_apiserver::authn::User;
use rand::RngCore;

/// How long a login link works.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// A session unused this long is over.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// How long a used or expired code is remembered, to tell why it no longer works.
const CODE_MEMORY: Duration = Duration::from_secs(60 * 60);
/// Token logins are open to anyone with a token: past this many sessions the idlest token
/// session goes. Login-link sessions (made by root alone) are never pushed out.
const MAX_SESSIONS: usize = 4096;
/// Sessions one token may hold: its idlest goes past this, so one token cannot crowd out others.
const MAX_SESSIONS_PER_TOKEN: usize = 16;

/// Who a session is: a user fixed at login (the admin, for a login link), or a bearer token
/// checked again on every use, so that a deleted account or token ends the session.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    User(User),
    Token(String),
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::User(user) => f.debug_tuple("User").field(&user.name).finish(),
            Login::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// Why a login link does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("This login link is not valid: run `peapod ui` for a new one.")]
    Unknown,
    #[error("This login link was already used: run `peapod ui` for a new one.")]
    Used,
    #[error("This login link has expired: run `peapod ui` for a new one.")]
    Expired,
}

/// The codes and sessions of one agent.
#[derive(Default)]
pub struct Sessions {
    state: Mutex<State>,
}

/// Counts only: the codes and ids are credentials.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Sessions")
            .field("codes", &state.codes.len())
            .field("sessions", &state.sessions.len())
            .finish()
    }
}

#[derive(Default)]
struct State {
    codes: HashMap<String, Code>,
    sessions: HashMap<String, Session>,
}

struct Code {
    issued: Instant,
    used: bool,
}

struct Session {
    login: Login,
    last_used: Instant,
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// A new one-time login code.
    pub fn issue_code(&self) -> String {
        self.issue_code_at(Instant::now())
    }

    /// Uses up `code`, opening a session for `login`; its id.
    pub fn redeem(&self, code: &str, login: Login) -> Result<String, CodeError> {
        self.redeem_at(code, login, Instant::now())
    }

    /// Opens a session for `login`; its id.
    pub fn open(&self, login: Login) -> String {
        self.open_at(login, Instant::now())
    }

    /// Who session `id` is, if it is live; counts as a use.
    pub fn login(&self, id: &str) -> Option<Login> {
        self.login_at(id, Instant::now())
    }

    /// Ends session `id`.
    pub fn end(&self, id: &str) {
        self.lock().sessions.remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn issue_code_at(&self, now: Instant) -> String {
        let code = random_id();
        let mut state = self.lock();
        state.forget_old(now);
        let fresh = Code {
            issued: now,
            used: false,
        };
        state.codes.insert(code.clone(), fresh);
        code
    }

    fn redeem_at(&self, code: &str, login: Login, now: Instant) -> Result<String, CodeError> {
        let mut state = self.lock();
        state.forget_old(now);
        let entry = state.codes.get_mut(code).ok_or(CodeError::Unknown)?;
        if entry.used {
            return Err(CodeError::Used);
        }
        if now.saturating_duration_since(entry.issued) > CODE_LIFETIME {
            return Err(CodeError::Expired);
        }
        entry.used = true;
        Ok(state.open(login, now))
    }

    fn open_at(&self, login: Login, now: Instant) -> String {
        let mut state = self.lock();
        state.forget_old(now);
        state.open(login, now)
    }

    fn login_at(&self, id: &str, now: Instant) -> Option<Login> {
        let mut state = self.lock();
        let session = state.sessions.get_mut(id)?;
        if now.saturating_duration_since(session.last_used) > SESSION_IDLE {
            state.sessions.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.login.clone())
    }
}

impl State {
    fn open(&mut self, login: Login, now: Instant) -> String {
        if let Login::Token(token) = &login {
            let same_token =
                |session: &Session| matches!(&session.login, Login::Token(t) if t == token);
            let held = self.sessions.values().filter(|s| same_token(s)).count();
            if held >= MAX_SESSIONS_PER_TOKEN {
                self.drop_idlest(same_token);
            }
            if self.sessions.len() >= MAX_SESSIONS {
                self.drop_idlest(|session| matches!(session.login, Login::Token(_)));
            }
        }
        let id = random_id();
        let session = Session {
            login,
            last_used: now,
        };
        self.sessions.insert(id.clone(), session);
        id
    }

    /// Ends the least recently used of the sessions `among` picks.
    fn drop_idlest(&mut self, among: impl Fn(&Session) -> bool) {
        let idlest = self
            .sessions
            .iter()
            .filter(|(_, session)| among(session))
            .min_by_key(|(_, session)| session.last_used)
            .map(|(id, _)| id.clone());
        if let Some(id) = idlest {
            self.sessions.remove(&id);
        }
    }

    /// Drops the codes past remembering and the sessions idle too long.
    fn forget_old(&mut self, now: Instant) {
        self.codes.retain(|_, code| {
            now.saturating_duration_since(code.issued) <= CODE_LIFETIME + CODE_MEMORY
        });
        self.sessions
            .retain(|_, session| now.saturating_duration_since(session.last_used) <= SESSION_IDLE);
    }
}

/// 32 random bytes of the OS, base64url without padding.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Login {
        Login::User(User::admin())
    }

    #[test]
    fn a_code_opens_one_session_once() {
        let sessions = Sessions::new();
        let code = sessions.issue_code();
        assert_eq!(code.len(), 43, "32 bytes, base64url");
        assert_ne!(code, sessions.issue_code(), "random");
        let id = sessions.redeem(&code, admin()).unwrap();
        assert_ne!(id, code);
        assert_eq!(sessions.login(&id), Some(admin()));
        assert_eq!(sessions.redeem(&code, admin()), Err(CodeError::Used));
        assert_eq!(sessions.redeem("nope", admin()), Err(CodeError::Unknown));
    }

    #[test]
    fn codes_expire_after_ten_minutes_and_are_forgotten_later() {
        let sessions = Sessions::new();
        let start = Instant::now();
        let code = sessions.issue_code_at(start);
        let late = start + CODE_LIFETIME + Duration::from_secs(1);
        assert_eq!(
            sessions.redeem_at(&code, admin(), late),
            Err(CodeError::Expired)
        );
        let much_later = late + CODE_MEMORY;
        assert_eq!(
            sessions.redeem_at(&code, admin(), much_later),
            Err(CodeError::Unknown)
        );
        let in_time = sessions.issue_code_at(start);
        let id = sessions.redeem_at(&in_time, admin(), start + CODE_LIFETIME);
        assert!(id.is_ok(), "still valid at 10 minutes");
    }

    #[test]
    fn sessions_end_after_twelve_idle_hours_or_a_logout() {
        let sessions = Sessions::new();
        let start = Instant::now();
        let token = Login::Token("t0ken".into());
        let id = sessions.open_at(token.clone(), start);
        let used = start + SESSION_IDLE - Duration::from_secs(1);
        assert_eq!(sessions.login_at(&id, used), Some(token.clone()));
        let again = used + SESSION_IDLE - Duration::from_secs(1);
        assert_eq!(
            sessions.login_at(&id, again),
            Some(token),
            "each use restarts the idle time"
        );
        assert_eq!(
            sessions.login_at(&id, again + SESSION_IDLE + Duration::from_secs(1)),
            None
        );
        assert_eq!(sessions.login_at(&id, again), None, "gone for good");

        let id = sessions.open(admin());
        sessions.end(&id);
        assert_eq!(sessions.login(&id), None);
    }

    #[test]
    fn a_token_past_its_cap_ends_its_own_idlest_session_only() {
        let sessions = Sessions::new();
        let start = Instant::now();
        let at = |i: usize| start + Duration::from_millis(i as u64);
        let other = sessions.open_at(Login::Token("other".into()), start);
        let pod = Login::Token("pod".into());
        let first = sessions.open_at(pod.clone(), at(1));
        for i in 2..=MAX_SESSIONS_PER_TOKEN + 1 {
            sessions.open_at(pod.clone(), at(i));
        }
        assert_eq!(sessions.lock().sessions.len(), MAX_SESSIONS_PER_TOKEN + 1);
        assert_eq!(sessions.login_at(&first, at(100)), None, "its idlest went");
        assert!(
            sessions.login_at(&other, at(100)).is_some(),
            "older, but another token's"
        );
    }

    #[test]
    fn token_sessions_past_the_limit_never_push_out_a_login_link_session() {
        let sessions = Sessions::new();
        let start = Instant::now();
        let at = |i: usize| start + Duration::from_millis(i as u64);
        let link = sessions.open_at(admin(), start);
        let first = sessions.open_at(Login::Token("t0".into()), at(1));
        for i in 2..=MAX_SESSIONS + 1 {
            sessions.open_at(Login::Token(format!("t{i}")), at(i));
        }
        assert_eq!(sessions.lock().sessions.len(), MAX_SESSIONS);
        let later = at(MAX_SESSIONS + 2);
        assert_eq!(
            sessions.login_at(&link, later),
            Some(admin()),
            "the idlest, but kept"
        );
        assert_eq!(
            sessions.login_at(&first, later),
            None,
            "the idlest token session went"
        );
    }

    #[test]
    fn tokens_stay_out_of_debug_output() {
        let text = format!("{:?}", Login::Token("s3cret".into()));
        assert_eq!(text, "Token(..)");
    }
}
