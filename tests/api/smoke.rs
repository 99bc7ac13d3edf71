//! The happy path end to end.

use crate::helpers::TestApp;

#[tokio::test]
async fn a_session_is_created_and_verified_with_the_code_sent() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let r = app.verify(Some(&cookie), &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["message"], "successfully verified");
    assert_eq!(r.json()["credential"], r#"{"email":"ann@example.com"}"#);
    assert!(r.clears_cookie());
    assert_eq!(app.final_action.runs(), 1);
}
