//! Property tests of the protocol (issue 19, item 2): for any sequence of create
//! (or switch), resend, right and wrong verify, cancel and clock advances over up
//! to three credentials, with the current cookie or a superseded one, against the
//! real server, the invariants hold:
//!
//! * no answer is a 5xx;
//! * wrong guesses per code never exceed the policy (3, resends included);
//! * resends per code never exceed the policy (1);
//! * a superseded cookie never succeeds, never resends and never costs an attempt;
//! * the final action runs exactly once per successful verify, and a session
//!   ends with it.

use std::collections::HashMap;

use proptest::prelude::*;

use crate::helpers::{Reply, TestApp};

const CREDENTIALS: [&str; 3] = ["a@example.com", "b@example.com", "c@example.com"];
const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    /// Create (or switch to) a credential, with the current cookie.
    Create(usize),
    /// Resend; `Some(i)`: with the i-th superseded cookie instead of the current.
    Resend(Option<usize>),
    /// Verify with the right code (`true`) or a wrong one.
    Verify(bool, Option<usize>),
    /// Cancel the session.
    Cancel,
    /// Move the clock (seconds).
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let old = proptest::option::weighted(0.3, 0usize..8);
    prop_oneof![
        3 => (0usize..3).prop_map(Op::Create),
        2 => old.clone().prop_map(Op::Resend),
        4 => (any::<bool>(), old).prop_map(|(right, old)| Op::Verify(right, old)),
        1 => Just(Op::Cancel),
        2 => (1u16..90).prop_map(Op::Advance),
    ]
}

/// What the test knows of the session, to check the server against.
#[derive(Default)]
struct Model {
    current: Option<String>,
    superseded: Vec<String>,
    credential: Option<&'static str>,
    wrong: HashMap<&'static str, u32>,
    resends: HashMap<&'static str, u32>,
    successes: usize,
}

impl Model {
    /// The cookie to use: the current one, or a superseded one when asked (and any exists).
    fn pick(&self, old: Option<usize>) -> (Option<String>, bool) {
        match old {
            Some(i) if !self.superseded.is_empty() => (
                Some(self.superseded[i % self.superseded.len()].clone()),
                true,
            ),
            _ => (self.current.clone(), false),
        }
    }

    /// Follows the answer's `Set-Cookie` (a new value, or a deletion).
    fn follow(&mut self, r: &Reply, used_stale: bool) {
        if let Some(new) = r.cookie() {
            assert!(
                !used_stale,
                "a superseded cookie produced a new one: {}",
                r.text
            );
            if let Some(old) = self.current.replace(new) {
                self.superseded.push(old);
            }
        } else if r.clears_cookie() && !used_stale {
            if let Some(old) = self.current.take() {
                self.superseded.push(old);
            }
        }
    }
}

async fn run(ops: Vec<Op>) {
    let app = TestApp::spawn().await;
    let mut m = Model::default();
    for op in ops {
        let sent_before = app.sent_count();
        let (reply, stale) = match &op {
            Op::Create(i) => {
                let cred = CREDENTIALS[*i];
                let r = app
                    .create_json(m.current.as_deref(), &serde_json::json!({ "email": cred }))
                    .await;
                if r.status == 200 {
                    m.credential = Some(cred);
                    if app.sent_count() > sent_before {
                        // A new token: its own attempt and resend budgets.
                        m.wrong.insert(cred, 0);
                        m.resends.insert(cred, 0);
                    }
                } else if r.cookie().is_none() && r.clears_cookie() {
                    m.credential = None;
                }
                (r, false)
            }
            Op::Resend(old) => {
                let (cookie, stale) = m.pick(*old);
                let r = app
                    .send(app.post("/api/otp/resend", cookie.as_deref()))
                    .await;
                if r.status == 200 {
                    assert!(!stale, "a superseded cookie resent: {}", r.text);
                    let cred = m.credential.expect("a current credential");
                    let n = m.resends.entry(cred).or_default();
                    *n += 1;
                    assert!(*n <= 1, "more resends than the policy allows");
                }
                (r, stale)
            }
            Op::Verify(right, old) => {
                let (cookie, stale) = m.pick(*old);
                let code = match m.credential {
                    Some(c) if app.sender.sent().iter().any(|(s, _)| s.contains(c)) => app
                        .sender
                        .sent()
                        .iter()
                        .rev()
                        .find(|(s, _)| s.contains(c))
                        .map(|(_, code)| code.clone())
                        .expect("a code"),
                    _ => "0000000000".to_owned(),
                };
                let code = if *right { code } else { app.wrong_code(&code) };
                let r = app.verify(cookie.as_deref(), &code).await;
                let error = if r.status >= 400 {
                    r.error()
                } else {
                    String::new()
                };
                if stale {
                    assert!(
                        matches!(r.status, 400 | 409 | 429),
                        "a superseded cookie got {}: {}",
                        r.status,
                        r.text
                    );
                }
                if r.status == 200 {
                    m.successes += 1;
                    m.credential = None;
                }
                if !stale && matches!(error.as_str(), "OTP:INCORRECT" | "OTP:TOO_MANY_ATTEMPTS") {
                    let cred = m.credential.expect("a current credential");
                    let n = m.wrong.entry(cred).or_default();
                    *n += 1;
                    assert!(
                        *n <= MAX_ATTEMPTS,
                        "more wrong guesses than the policy allows"
                    );
                }
                (r, stale)
            }
            Op::Cancel => {
                let r = app
                    .send(app.post("/api/otp/cancel", m.current.as_deref()))
                    .await;
                if r.status == 204 {
                    m.credential = None;
                }
                (r, false)
            }
            Op::Advance(s) => {
                app.advance(f64::from(*s));
                continue;
            }
        };
        assert!(
            reply.status < 500,
            "{op:?} answered {}: {}",
            reply.status,
            reply.text
        );
        m.follow(&reply, stale);
    }
    assert_eq!(
        app.final_action.runs(),
        m.successes,
        "the final action ran once per successful verify"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_sequence_keeps_the_invariants(ops in proptest::collection::vec(op(), 1..28)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run(ops));
    }
}
