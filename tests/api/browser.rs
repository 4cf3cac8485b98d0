//! End-to-end tests of the web client: headless Chromium, driven over
//! WebDriver by chromedriver, against a server started by each test.
//!
//! They need Debian's `chromium` and `chromium-driver` packages, which
//! `ci-browser.sh` installs. Without them each test prints `skipped: ...`
//! and passes. With `CONFAB_REQUIRE_BROWSER=1`, as in CI, it fails instead.
//! Set `CONFAB_UPDATE_SCREENSHOT=1` to rewrite the screenshots under docs/.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::helpers::{spawn_app, TestApp, PASSWORD};
use crate::proxy::Proxy;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a step may take before the test fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Lets one browser test run at a time. Several Chromium processes at once
/// starve a small machine, and steps then miss `STEP_TIMEOUT`.
static BROWSER_TESTS: Semaphore = Semaphore::const_new(1);

/// A chromedriver process, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
    _turn: SemaphorePermit<'static>,
}

impl Driver {
    /// Starts chromedriver on a free port once no other browser test runs.
    /// Returns `None` when Chromium or chromedriver is missing, and panics
    /// instead when `CONFAB_REQUIRE_BROWSER=1`.
    async fn start() -> Option<Self> {
        let required = std::env::var("CONFAB_REQUIRE_BROWSER").as_deref() == Ok("1");
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if Path::new(binary).exists() {
                continue;
            }
            assert!(
                !required,
                "{binary} is not installed and CONFAB_REQUIRE_BROWSER=1; run ci-browser.sh"
            );
            println!("skipped: {binary} is not installed (run ci-browser.sh)");
            return None;
        }
        let turn = BROWSER_TESTS
            .acquire()
            .await
            .expect("the browser test semaphore is never closed");
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start chromedriver");
        let driver = Self {
            process,
            url: format!("http://127.0.0.1:{port}"),
            _turn: turn,
        };

        let deadline = Instant::now() + STEP_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(driver)
    }

    /// Opens a browser with a fresh profile: a separate user with its own cookies.
    async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir().expect("failed to create a browser profile folder");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1100,720",
            // Any host but 127.0.0.1 fails to resolve, so a request that
            // leaves this machine fails the test instead of going out.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("the capabilities literal is an object")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("failed to open a WebDriver session");
        Browser {
            client,
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("failed to find a free port");
    listener.local_addr().unwrap().port()
}

/// One browser window with its own profile.
struct Browser {
    client: Client,
    _profile: TempDir,
}

impl Browser {
    /// Clicks `css` once it is displayed, because panels that open with a
    /// click can take a moment to show their fields.
    async fn click(&self, css: &str) {
        eventually(&format!("{css} to accept a click"), async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            element.is_displayed().await.ok()?.then_some(())?;
            element.click().await.ok()
        })
        .await;
    }

    /// Replaces the text of `css` with `text` once it is displayed.
    async fn fill(&self, css: &str, text: &str) {
        eventually(&format!("{css} to accept typing"), async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            element.is_displayed().await.ok()?.then_some(())?;
            element.clear().await.ok()?;
            element.send_keys(text).await.ok()
        })
        .await;
    }

    /// Returns the rendered text of `css`, empty when it is missing or hidden.
    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn displayed(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn script(&self, code: &str) -> Value {
        self.client
            .execute(code, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}\n{code}"))
    }

    /// Waits until `css` is displayed.
    async fn wait_displayed(&self, css: &str) {
        eventually(&format!("{css} to be displayed"), async || {
            self.displayed(css).await.then_some(())
        })
        .await;
    }

    /// Waits until the text of `css` contains `expected`, and returns it.
    async fn wait_text(&self, css: &str, expected: &str) -> String {
        eventually(&format!("{css} to contain {expected:?}"), async || {
            let text = self.text(css).await;
            text.contains(expected).then_some(text)
        })
        .await
    }

    /// Waits until the text of `css` no longer contains `unexpected`.
    async fn wait_text_gone(&self, css: &str, unexpected: &str) {
        eventually(&format!("{css} to lose {unexpected:?}"), async || {
            (!self.text(css).await.contains(unexpected)).then_some(())
        })
        .await;
    }

    async fn register(&self, base_url: &str, email: &str, name: &str) {
        self.client.goto(base_url).await.unwrap();
        self.wait_displayed("#auth-form").await;
        self.click("#auth-switch").await;
        self.fill("#auth-email", email).await;
        self.fill("#auth-password", PASSWORD).await;
        self.fill("#auth-name", name).await;
        self.click("#auth-submit").await;
        self.wait_displayed("#app").await;
        let shown = self
            .script("return document.getElementById('me-name').textContent;")
            .await;
        assert_eq!(shown, name, "the signed-in name");
    }

    async fn log_in(&self, email: &str, password: &str) {
        self.fill("#auth-email", email).await;
        self.fill("#auth-password", password).await;
        self.click("#auth-submit").await;
    }

    /// Opens the conversation whose list entry contains `title`.
    async fn open_chat(&self, title: &str) {
        let item = eventually(&format!("a conversation named {title}"), async || {
            let items = self
                .client
                .find_all(Locator::Css(".chat-item"))
                .await
                .ok()?;
            for item in items {
                if item.text().await.ok()?.contains(title) {
                    return Some(item);
                }
            }
            None
        })
        .await;
        item.click().await.unwrap();
        self.wait_text("#conversation-title", title).await;
    }

    async fn send(&self, text: &str) {
        self.fill("#composer-input", text).await;
        self.click("#composer-send").await;
        self.wait_text("#messages", text).await;
    }

    /// Returns the message list item whose body is exactly `body`.
    async fn message(&self, body: &str) -> Element {
        eventually(&format!("a message {body:?}"), async || {
            let items = self
                .client
                .find_all(Locator::Css("#messages .message"))
                .await
                .ok()?;
            for item in items {
                let text = item
                    .find(Locator::Css(".body"))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                if text == body {
                    return Some(item);
                }
            }
            None
        })
        .await
    }

    /// Opens a page under /auth, where the refresh cookie is in scope, and
    /// returns that cookie as the browser stores it and what page scripts
    /// see of `document.cookie` there. Leaves the app, so the caller opens
    /// it again.
    async fn cookie_under_auth(
        &self,
        app: &TestApp,
    ) -> (Option<fantoccini::cookies::Cookie<'static>>, String) {
        self.client.goto(&app.url("/auth/me")).await.unwrap();
        let cookies = self.client.get_all_cookies().await.unwrap();
        let visible = self.script("return document.cookie;").await;
        let cookie = cookies
            .into_iter()
            .find(|cookie| cookie.name() == "confab_refresh");
        (cookie, visible.as_str().unwrap_or_default().to_owned())
    }

    /// Sends `keys` to the element that has the keyboard focus.
    async fn type_keys(&self, keys: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused
            .send_keys(keys)
            .await
            .unwrap_or_else(|error| panic!("failed to type {keys:?}: {error}"));
    }

    /// Returns the id of the focused element, or its class when it has no id.
    async fn focused(&self) -> String {
        let name = self
            .script("const e = document.activeElement; return e.id || e.className;")
            .await;
        name.as_str().unwrap_or_default().to_owned()
    }

    /// Lists form fields that have neither a label nor an `aria-label`.
    async fn unlabelled_fields(&self) -> Value {
        self.script(
            "return [...document.querySelectorAll('input, textarea, select')]
               .filter((field) => field.labels.length === 0 && !field.getAttribute('aria-label'))
               .map((field) => field.id || field.name);",
        )
        .await
    }

    /// Lists the URLs of every file the page loaded.
    async fn loaded_urls(&self) -> Vec<String> {
        let urls = self
            .script("return performance.getEntriesByType('resource').map((entry) => entry.name);")
            .await;
        serde_json::from_value(urls).unwrap()
    }

    async fn screenshot_if_requested(&self, name: &str) {
        if std::env::var("CONFAB_UPDATE_SCREENSHOT").as_deref() != Ok("1") {
            return;
        }
        let png = self.client.screenshot().await.expect("screenshot failed");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name);
        std::fs::write(&path, png).expect("failed to write the screenshot");
        println!("wrote {}", path.display());
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Polls `check` until it returns `Some`, for at most `STEP_TIMEOUT`.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers `email` over HTTP and returns its user id and access token.
async fn api_user(app: &TestApp, email: &str, name: &str) -> (i64, String) {
    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": email, "password": PASSWORD, "display_name": name }),
            None,
        )
        .await;
    assert_eq!(response.status(), 201, "registration of {email} failed");
    let body: Value = response.json().await.unwrap();
    (
        body["user"]["id"].as_i64().unwrap(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

/// Registers Ann and Bob over HTTP and opens their direct conversation.
/// Returns Ann's access token and the conversation.
async fn direct_chat_of_ann_and_bob(app: &TestApp) -> (String, Value) {
    let (_, ann_token) = api_user(app, "ann@example.test", "Ann").await;
    let (bob_id, _) = api_user(app, "bob@example.test", "Bob").await;
    let chat: Value = app
        .post_json(
            "/chats",
            &json!({ "kind": "direct", "user_id": bob_id }),
            Some(&ann_token),
        )
        .await
        .json()
        .await
        .unwrap();
    (ann_token, chat)
}

#[tokio::test]
async fn client_files_have_types_and_csp() {
    let app = spawn_app().await;
    let files = [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/conversation.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/icon.svg", "image/svg+xml"),
    ];
    for (path, content_type) in files {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        assert_eq!(
            header("content-security-policy"),
            confab::web::PAGE_CSP,
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }

    // The API keeps its stricter policy: data only, never a document.
    for path in ["/healthz", "/auth/me", "/no-such-route"] {
        let response = app.get(path, None).await;
        let headers = response.headers();
        assert_eq!(
            headers["content-security-policy"],
            confab::http::middleware::API_CSP,
            "{path}"
        );
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }

    let page = app.get("/", None).await.text().await.unwrap();
    assert!(!page.contains("<script>"), "the page has an inline script");
    assert!(!page.contains("style="), "the page has an inline style");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page names another host"
    );
}

#[tokio::test]
async fn logout_returns_to_login_and_revokes_token() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    let ann = driver.browser().await;

    ann.client.goto(&app.url("/")).await.unwrap();
    ann.wait_displayed("#auth-form").await;
    // Record the Authorization headers the page sends, to test its token after logout.
    ann.script(
        "window.seenAuthorization = [];
         const originalFetch = window.fetch;
         window.fetch = (input, init = {}) => {
           const value = init.headers && init.headers.Authorization;
           if (value) window.seenAuthorization.push(value);
           return originalFetch(input, init);
         };",
    )
    .await;
    ann.click("#auth-switch").await;
    ann.fill("#auth-email", "ann@example.test").await;
    ann.fill("#auth-password", PASSWORD).await;
    ann.click("#auth-submit").await;
    ann.wait_displayed("#app").await;

    let authorization = eventually("an authenticated request", async || {
        let seen = ann.script("return window.seenAuthorization;").await;
        seen.as_array()?.first()?.as_str().map(str::to_owned)
    })
    .await;
    let me = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", &authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the page's token works before logout");

    ann.click("#logout").await;
    ann.wait_displayed("#auth-form").await;
    assert!(
        !ann.displayed("#app").await,
        "the app stays hidden after logout"
    );
    let (cookie, _) = ann.cookie_under_auth(&app).await;
    assert!(cookie.is_none(), "logout clears the refresh cookie");
    ann.client.goto(&app.url("/")).await.unwrap();
    ann.wait_displayed("#auth-form").await;
    assert!(!ann.displayed("#app").await, "a reload stays signed out");
    let me = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", &authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "the old token is rejected after logout");

    let storage = ann
        .script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage);")
        .await;
    assert_eq!(storage, "{}{}", "no token in web storage");

    ann.log_in("ann@example.test", "wrong password").await;
    ann.wait_text("#auth-error", "The email or password is incorrect.")
        .await;

    ann.log_in("ann@example.test", PASSWORD).await;
    ann.wait_displayed("#app").await;
    ann.click("#logout").await;
    ann.wait_displayed("#auth-form").await;

    app.stop().await;
    ann.log_in("ann@example.test", PASSWORD).await;
    ann.wait_text("#auth-error", "The server is unreachable")
        .await;
    ann.close().await;
}

#[tokio::test]
async fn reload_keeps_session() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    let ann = driver.browser().await;
    ann.register(&app.url("/"), "ann@example.test", "Ann").await;

    // Chromium stores a Secure cookie from plain http://127.0.0.1, because
    // it treats loopback addresses as secure contexts.
    let (cookie, visible) = ann.cookie_under_auth(&app).await;
    let cookie = cookie.expect("the refresh cookie is stored");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(
        cookie.same_site().map(|same_site| same_site.to_string()),
        Some("Strict".to_owned())
    );
    assert_eq!(cookie.path(), Some("/auth"));
    assert_eq!(visible, "", "page scripts can read the refresh cookie");

    // Opening the app again restores the session from the cookie alone.
    ann.client.goto(&app.url("/")).await.unwrap();
    ann.wait_displayed("#app").await;
    ann.wait_text("#me-name", "Ann").await;
    assert!(!ann.displayed("#auth-form").await);

    // That refresh rotated the token, and the rotated one works for a reload.
    ann.client.refresh().await.unwrap();
    ann.wait_displayed("#app").await;
    ann.wait_text("#me-name", "Ann").await;
    let (rotated, _) = ann.cookie_under_auth(&app).await;
    let rotated = rotated.expect("the refresh cookie is kept");
    assert_ne!(
        rotated.value(),
        cookie.value(),
        "the cookie was not rotated"
    );
    ann.close().await;
}

#[tokio::test]
async fn two_users_chat_live() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    let base = app.url("/");
    let ann = driver.browser().await;
    let bob = driver.browser().await;
    ann.register(&base, "ann@example.test", "Ann").await;
    bob.register(&base, "bob@example.test", "Bob").await;
    // The page's CSP forbids inline scripts and styles; anything the client
    // builds while chatting that breaks it is recorded here.
    for browser in [&ann, &bob] {
        browser
            .script(
                "window.cspViolations = [];
                 document.addEventListener('securitypolicyviolation', (event) => {
                   window.cspViolations.push(event.violatedDirective);
                 });",
            )
            .await;
    }

    // Ann finds Bob by email and writes first.
    ann.click("#open-direct").await;
    ann.fill("#direct-query", "bob@example.test").await;
    ann.click("#direct-search button[type=submit]").await;
    ann.wait_text("#direct-results", "Message Bob").await;
    ann.click("#direct-results button").await;
    ann.wait_text("#conversation-title", "Bob").await;
    ann.send("Hi Bob! Are we still on for Friday?").await;

    // The conversation and its unread count reach Bob live.
    let item = bob.wait_text("#chat-list", "Ann").await;
    assert!(item.contains("Ann: Hi Bob!"), "preview: {item}");
    bob.wait_text("#chat-list .unread", "1").await;
    bob.open_chat("Ann").await;
    bob.wait_text("#messages", "Are we still on for Friday?")
        .await;
    eventually("the unread count to clear", async || {
        (!bob.displayed("#chat-list .unread").await).then_some(())
    })
    .await;

    // Typing notices and replies, both ways.
    bob.fill("#composer-input", "Yes").await;
    ann.wait_text("#typing", "Bob is typing").await;
    bob.click("#composer-send").await;
    ann.message("Yes").await;
    ann.send("Great, see you at the station at 6.").await;
    bob.message("Great, see you at the station at 6.").await;
    bob.fill("#composer-input", "Sounds good").await;
    ann.wait_text("#typing", "Bob is typing").await;
    ann.screenshot_if_requested("screenshot-conversation.png")
        .await;
    bob.click("#composer-send").await;
    ann.message("Sounds good").await;

    // A body that looks like HTML is shown as text.
    let attack = "<img src=x onerror=alert(1)>";
    ann.send(attack).await;
    let shown = bob.message(attack).await;
    let images = shown.find_all(Locator::Css("img")).await.unwrap();
    assert!(images.is_empty(), "the body was parsed as HTML");
    assert_eq!(
        bob.script("return document.querySelectorAll('#messages img').length;")
            .await,
        0
    );

    // Ann edits and deletes her own messages; Bob sees both live.
    let first = ann.message("Hi Bob! Are we still on for Friday?").await;
    first
        .find(Locator::Css(".message-actions button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    ann.fill(".edit-input", "Hi Bob! Are we still on for Saturday?")
        .await;
    ann.click(".edit-form button[type=submit]").await;
    let edited = bob.message("Hi Bob! Are we still on for Saturday?").await;
    assert!(edited.text().await.unwrap().contains("(edited)"));

    let attack_message = ann.message(attack).await;
    attack_message
        .find(Locator::Css(".message-actions .danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    ann.client.accept_alert().await.unwrap();
    bob.wait_text("#messages", "This message was deleted.")
        .await;
    bob.wait_text_gone("#messages", attack).await;

    // Everything the pages loaded came from the server under test.
    for browser in [&ann, &bob] {
        let violations = browser.script("return window.cspViolations;").await;
        assert_eq!(violations, json!([]), "CSP violations");
        for url in browser.loaded_urls().await {
            assert!(url.starts_with(&base), "request to another origin: {url}");
        }
    }
    ann.close().await;
    bob.close().await;
}

#[tokio::test]
async fn history_loads_older_on_scroll() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    let (ann_token, chat) = direct_chat_of_ann_and_bob(&app).await;
    let path = format!("/chats/{}/messages", chat["id"]);
    for number in 1..=120 {
        let body = json!({ "body": format!("message {number}") });
        let response = app.post_json(&path, &body, Some(&ann_token)).await;
        assert_eq!(response.status(), 201);
    }

    let ann = driver.browser().await;
    ann.client.goto(&app.url("/")).await.unwrap();
    ann.wait_displayed("#auth-form").await;
    ann.log_in("ann@example.test", PASSWORD).await;
    ann.open_chat("Bob").await;
    ann.message("message 120").await;
    assert!(!ann.text("#messages").await.contains("message 1\n"));

    // Scrolling to the top loads a page at a time until the first message.
    eventually("the first message after scrolling up", async || {
        ann.script("document.getElementById('message-scroller').scrollTop = 0;")
            .await;
        let first = ann
            .script("return document.querySelector('#messages .message .body').textContent;")
            .await;
        (first == "message 1").then_some(())
    })
    .await;
    ann.wait_text("#history-status", "start of the conversation")
        .await;
    let count = ann
        .script("return document.querySelectorAll('#messages .message').length;")
        .await;
    assert_eq!(count, 120, "every message is shown once");
    ann.close().await;
}

#[tokio::test]
async fn reconnect_catches_up() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    // Ann reaches the server through a proxy that the test can cut.
    let proxy = Proxy::start(app.address).await;
    let ann = driver.browser().await;
    let bob = driver.browser().await;
    ann.register(
        &format!("http://{}/", proxy.address),
        "ann@example.test",
        "Ann",
    )
    .await;
    bob.register(&app.url("/"), "bob@example.test", "Bob").await;

    bob.click("#open-direct").await;
    bob.fill("#direct-query", "Ann").await;
    bob.click("#direct-search button[type=submit]").await;
    bob.wait_text("#direct-results", "Message Ann").await;
    bob.click("#direct-results button").await;
    bob.send("Before the outage").await;
    ann.open_chat("Bob").await;
    ann.message("Before the outage").await;

    proxy.cut();
    ann.wait_text("#connection", "Reconnecting").await;
    bob.send("During the outage").await;
    // Every request of Ann's page goes through the cut proxy, so nothing
    // can have brought her this message yet.
    assert!(!ann.text("#messages").await.contains("During the outage"));

    proxy.restore();
    ann.message("During the outage").await;
    ann.wait_text_gone("#connection", "Reconnecting").await;
    bob.send("After the outage").await;
    ann.message("After the outage").await;
    ann.close().await;
    bob.close().await;
}

#[tokio::test]
async fn group_created_on_phone_screen() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    api_user(&app, "bob@example.test", "Bob").await;
    api_user(&app, "cleo@example.test", "Cleo").await;
    let ann = driver.browser().await;
    ann.client.set_window_size(390, 844).await.unwrap();
    ann.register(&app.url("/"), "ann@example.test", "Ann").await;

    ann.click("#open-group").await;
    ann.fill("#group-title", "Weekend trip").await;
    for name in ["Bob", "Cleo"] {
        ann.fill("#group-query", name).await;
        ann.click("#group-search").await;
        ann.wait_text("#group-results", &format!("Add {name}"))
            .await;
        ann.click("#group-results button").await;
        ann.wait_text("#group-members", name).await;
    }
    ann.click("#group-form button[type=submit]").await;

    // On a phone the conversation replaces the list.
    ann.wait_text("#conversation-title", "Weekend trip").await;
    ann.wait_text("#conversation-members", "Bob").await;
    ann.wait_text("#conversation-members", "Cleo").await;
    assert!(!ann.displayed("#sidebar").await, "the list is hidden");
    ann.send("Who brings the tent?").await;
    ann.screenshot_if_requested("screenshot-phone.png").await;

    ann.click("#back").await;
    ann.wait_displayed("#sidebar").await;
    ann.wait_text("#chat-list", "Weekend trip").await;
    assert!(!ann.displayed("#conversation-view").await);
    ann.close().await;
}

#[tokio::test]
async fn keyboard_alone_signs_in_and_chats() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    let (ann_token, chat) = direct_chat_of_ann_and_bob(&app).await;

    let ann = driver.browser().await;
    ann.client.goto(&app.url("/")).await.unwrap();
    ann.wait_displayed("#auth-form").await;
    assert_eq!(ann.unlabelled_fields().await, json!([]), "sign-in form");

    // The form opens with the email field focused. Tab moves to the
    // password, and Enter submits.
    assert_eq!(ann.focused().await, "auth-email");
    ann.type_keys("ann@example.test").await;
    ann.type_keys(&char::from(Key::Tab).to_string()).await;
    assert_eq!(ann.focused().await, "auth-password");
    ann.type_keys(&format!("{PASSWORD}{}", char::from(Key::Enter)))
        .await;
    ann.wait_displayed("#app").await;
    assert_eq!(ann.focused().await, "open-direct", "focus after sign-in");

    // Tab order: the two "New" buttons, then the conversations.
    let tab = char::from(Key::Tab).to_string();
    ann.type_keys(&tab).await;
    assert_eq!(ann.focused().await, "open-group");
    eventually("the conversation in the list", async || {
        ann.displayed(".chat-item").await.then_some(())
    })
    .await;
    ann.type_keys(&tab).await;
    assert_eq!(ann.focused().await, "chat-item");

    // Enter opens it and puts the focus in the composer, where Enter sends.
    ann.type_keys(&char::from(Key::Enter).to_string()).await;
    ann.wait_text("#conversation-title", "Bob").await;
    assert_eq!(ann.focused().await, "composer-input");
    ann.type_keys(&format!("Sent by keyboard{}", char::from(Key::Enter)))
        .await;
    ann.message("Sent by keyboard").await;
    assert_eq!(ann.unlabelled_fields().await, json!([]), "the app");

    let stored: Value = app
        .get(&format!("/chats/{}/messages", chat["id"]), Some(&ann_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["items"][0]["body"], "Sent by keyboard");
    ann.close().await;
}
