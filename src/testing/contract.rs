//! The contract suites of the store traits: every guarantee their docs promise,
//! checked on a real implementation (no mocks). The built-in stores run them in the
//! project's tests; a fork's own store runs them with one call.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::crypto::{self, Kek, KeyId, Sealed};
use crate::plugin::limit_store::{Hit, LimitKey, Rule, Scope};
use crate::plugin::{IdStore, Kms, LimitStore, ListId};

/// The start of the suites' time line (any fixed instant would do).
pub const T0: Timestamp = Timestamp::from_millis(1_795_089_600_000);
/// Callers racing for one ID or one key.
const CALLERS: usize = 32;
/// The rotation a KMS under [`kms_contract`] must be built with.
pub const CONTRACT_ROTATION: Duration = Duration::from_secs(100);
/// The retention a KMS under [`kms_contract`] must be built with.
pub const CONTRACT_RETENTION: Duration = Duration::from_secs(181);

/// `T0` plus `ms` milliseconds.
pub fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

/// Checks the guarantees of [`IdStore`] on two handles of one backend (for a
/// shared backend, two independent instances with their own connections, as two
/// server processes would have; for a per-process store, the same object twice).
///
/// Panics, with the broken guarantee, on the first violation.
pub async fn id_store_contract(a: Arc<dyn IdStore>, b: Arc<dyn IdStore>) {
    let now = at(0);
    let exp = at(10_000);

    // Issued IDs are fresh and consumed exactly once, from any instance.
    let id = a.issue(exp, now).await.expect("issue");
    assert_ne!(id, a.issue(exp, now).await.expect("issue"));
    assert!(b.consume(id, now).await.expect("consume"));
    assert!(!a.consume(id, now).await.expect("consume"));
    assert!(!b.consume(id, now).await.expect("consume"));

    // Looking changes nothing; a consumed, unknown or expired ID is not live.
    let id = a.issue(exp, now).await.expect("issue");
    assert!(b.is_live(id, now).await.expect("is_live"));
    assert!(a.is_live(id, now).await.expect("is_live"), "looking twice");
    assert!(
        !b.is_live(id, exp).await.expect("is_live"),
        "dead at its expiry"
    );
    assert!(
        b.consume(id, now).await.expect("consume"),
        "looking spent nothing"
    );
    assert!(!a.is_live(id, now).await.expect("is_live"));
    assert!(!a.is_live(ListId::random(), now).await.expect("is_live"));

    // Retire removes a live ID once and leaves no double-submit trace.
    let id = a.issue(exp, now).await.expect("issue");
    assert!(b.retire(id, now).await.expect("retire"));
    assert!(!a.retire(id, now).await.expect("retire"));
    assert!(!a.just_consumed(id, now).await.expect("just_consumed"));
    assert!(!a.consume(id, now).await.expect("consume"));

    // Replace retires the old ID and hands out a new live one.
    let old = a.issue(exp, now).await.expect("issue");
    let new = b
        .replace(old, exp, now)
        .await
        .expect("replace")
        .expect("live");
    assert_ne!(old, new);
    assert_eq!(a.replace(old, exp, now).await.expect("replace"), None);
    assert!(!a.consume(old, now).await.expect("consume"));
    assert!(a.consume(new, now).await.expect("consume"));
    let unknown = ListId::random();
    assert_eq!(a.replace(unknown, exp, now).await.expect("replace"), None);
    assert!(!a.consume(unknown, now).await.expect("consume"));

    // Expired IDs are dead: at their expiry exactly, for consume and for replace.
    let id = a.issue(exp, now).await.expect("issue");
    assert!(!b.consume(id, exp).await.expect("consume"));
    let id = a.issue(exp, now).await.expect("issue");
    assert_eq!(b.replace(id, exp, exp).await.expect("replace"), None);
    let id = a.issue(exp, now).await.expect("issue");
    let last_ms = at(9_999);
    // The replacement is not consumed here: in Redis it lives the 1 ms left of real
    // time, so a consume would race the machine's speed (it failed once in CI).
    b.replace(id, exp, last_ms)
        .await
        .expect("replace")
        .expect("still live 1 ms before expiry");
    // An ID issued already dead is never live.
    let dead = a.issue(now, now).await.expect("issue");
    assert!(!a.consume(dead, now).await.expect("consume"));

    // 32 concurrent replaces of one ID, split over both instances: exactly one wins.
    let id = a.issue(exp, now).await.expect("issue");
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { s.replace(id, exp, now).await.expect("replace") })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(new) = t.await.expect("task") {
            winners.push(new);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one replace wins");

    // 32 concurrent consumes of the winner's ID: exactly one true.
    let id = winners[0];
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { s.consume(id, now).await.expect("consume") })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.expect("task"));
    }
    assert_eq!(won, 1, "exactly one consume wins");

    a.ping().await.expect("ping");
}

/// Whether two handles hold the same key (a value sealed with one opens with the other).
pub fn same_key(id: KeyId, x: &Kek, y: &Kek) -> bool {
    let sealed = crypto::seal(id, x, "o", b"probe");
    Sealed::parse(&sealed).expect("parses").open(y, "o").is_ok()
}

async fn concurrent_current(a: &Arc<dyn Kms>, b: &Arc<dyn Kms>, now: Timestamp) -> KeyId {
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let k = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { k.current(now).await.expect("current").0 })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task"));
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every caller on every instance gets one key: {ids:?}"
    );
    ids[0]
}

/// Checks the guarantees of [`Kms`] on two handles of one backend, built with a
/// rotation of [`CONTRACT_ROTATION`] and a retention of [`CONTRACT_RETENTION`].
/// Panics, with the broken guarantee, on the first violation.
pub async fn kms_contract(a: Arc<dyn Kms>, b: Arc<dyn Kms>) {
    // One key for everybody, even when 32 callers on two instances ask at once.
    let k1 = concurrent_current(&a, &b, at(0)).await;
    let (_, ka) = a.current(at(1)).await.expect("current");
    let kb = b.get(k1, at(1)).await.expect("get").expect("known");
    assert!(same_key(k1, &ka, &kb), "both instances hold the same key");

    // Stable within the period.
    assert_eq!(b.current(at(99_999)).await.expect("current").0, k1);

    // At the rotation time exactly one new key, again under concurrency.
    let k2 = concurrent_current(&a, &b, at(100_000)).await;
    assert_ne!(k1, k2);
    assert_eq!(a.current(at(100_001)).await.expect("current").0, k2);

    // The old key opens until every cookie sealed with it has expired.
    let retired = 100_000 + u64::try_from(CONTRACT_RETENTION.as_millis()).unwrap_or(u64::MAX);
    for kms in [&a, &b] {
        assert!(kms.get(k1, at(retired - 1)).await.expect("get").is_some());
        assert!(kms.get(k1, at(retired)).await.expect("get").is_none());
        assert!(kms.get(k2, at(retired)).await.expect("get").is_some());
        assert!(
            kms.get(KeyId::random(), at(1))
                .await
                .expect("get")
                .is_none()
        );
    }
    a.ping().await.expect("ping");
}

/// Checks the guarantees of [`LimitStore`] on two handles of one backend (as for
/// [`id_store_contract`]). Keys are random, so a shared backend may hold others.
///
/// Panics, with the broken guarantee, on the first violation.
pub async fn limit_store_contract(a: Arc<dyn LimitStore>, b: Arc<dyn LimitStore>) {
    let key = |scope| {
        let mut subject = [0u8; 16];
        rand::fill(&mut subject);
        LimitKey { scope, subject }
    };
    let rule = Rule::new(3, Duration::from_secs(10));
    let allowed = |hit: Hit| match hit {
        Hit::Allowed { count, receipt } => Some((count, receipt)),
        Hit::Denied { .. } => None,
    };

    // Up to the limit, from either instance; counts include the new event.
    let k = key(Scope::SendsPerCredential);
    for (n, store) in [&a, &b, &a].into_iter().enumerate() {
        let (count, receipt) = allowed(
            store
                .hit(&k, rule, true, at(n as u64 * 1000))
                .await
                .expect("hit"),
        )
        .expect("under the limit");
        assert_eq!(count as usize, n + 1, "the count includes the new event");
        assert!(receipt.is_some(), "a recorded event has a receipt");
    }
    // At the limit: refused, nothing recorded, and the budget returns when the
    // oldest event leaves the window (not before).
    let refused = b.hit(&k, rule, true, at(2500)).await.expect("hit");
    assert_eq!(
        refused,
        Hit::Denied {
            retry_at: at(10_000)
        },
        "a fourth event in the window is refused until the first leaves"
    );
    assert!(matches!(
        a.hit(&k, rule, false, at(9999)).await.expect("look"),
        Hit::Denied { .. }
    ));
    let (count, _) = allowed(a.hit(&k, rule, false, at(10_000)).await.expect("look"))
        .expect("the first event left the window");
    assert_eq!(count, 2, "looking records nothing");

    // Undo takes back exactly its event.
    let k = key(Scope::FailuresPerCredential);
    let (_, first) = allowed(a.hit(&k, rule, true, at(0)).await.expect("hit")).expect("allowed");
    for _ in 0..2 {
        assert!(allowed(a.hit(&k, rule, true, at(0)).await.expect("hit")).is_some());
    }
    assert!(allowed(b.hit(&k, rule, true, at(0)).await.expect("hit")).is_none());
    b.undo(&k, first.expect("receipt")).await.expect("undo");
    assert!(
        allowed(a.hit(&k, rule, true, at(0)).await.expect("hit")).is_some(),
        "room again"
    );
    assert!(allowed(a.hit(&k, rule, true, at(0)).await.expect("hit")).is_none());

    // Scopes and subjects are separate budgets; a batch answers in order.
    let other = LimitKey {
        scope: Scope::CreatesPerIp,
        subject: k.subject,
    };
    let answers = b
        .hit_all(&[(other, rule, true), (k, rule, true)], at(0))
        .await;
    assert!(matches!(
        answers.first(),
        Some(Ok(Hit::Allowed { count: 1, .. }))
    ));
    assert!(matches!(answers.get(1), Some(Ok(Hit::Denied { .. }))));

    // Concurrent callers on both instances: exactly the limit gets through.
    let k = key(Scope::SendsGlobal);
    let rule = Rule::new(5, Duration::from_secs(60));
    let hits = futures_util::future::join_all((0..CALLERS).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        async move { store.hit(&k, rule, true, at(0)).await.expect("hit") }
    }))
    .await;
    let through = hits
        .into_iter()
        .filter(|h| matches!(h, Hit::Allowed { .. }))
        .count();
    assert_eq!(
        through, 5,
        "exactly the limit among {CALLERS} concurrent callers"
    );
}
