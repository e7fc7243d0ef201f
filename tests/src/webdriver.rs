//! Drives Debian's headless Chromium through `chromedriver` with the
//! `fantoccini` WebDriver client, for the settings browser tests. A thin
//! wrapper: CSS selectors in, panics with context out. Every wait is bounded;
//! screenshots go to `tests/artifacts/`.

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::error::{CmdError, NewSessionError};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini::elements::Element;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long `find`, `wait_text`, `click` and `type_into` wait for the page.
const WAIT: Duration = Duration::from_secs(10);

/// A running chromedriver with one browser session; both are ended on drop.
pub struct Browser {
    client: Client,
    driver: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; panics with one clear line if they are missing.
    pub async fn start() -> Self {
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            panic!("{CHROMEDRIVER} is missing: install it with `apt-get install -y chromium chromium-driver`");
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "timeouts": {"pageLoad": 30_000, "script": 10_000},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps.as_object().cloned().expect("capabilities object"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let connect = async {
            loop {
                match builder.connect(&url).await {
                    Ok(client) => return Ok(client),
                    // chromedriver is not listening yet.
                    Err(
                        NewSessionError::Failed(_)
                        | NewSessionError::FailedC(_)
                        | NewSessionError::Lost(_),
                    ) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        let started = tokio::time::timeout(Duration::from_secs(60), connect)
            .await
            .unwrap_or_else(|_| Err("no session within 60 s".into()));
        let client = started.unwrap_or_else(|e| {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver or chromium did not start: {e}")
        });
        Self {
            client,
            driver,
            port,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The elements matching `css` that are visible now (no waiting).
    async fn visible(&self, css: &str) -> Vec<Element> {
        let mut shown = Vec::new();
        for el in self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
        {
            if el.is_displayed().await.unwrap_or(false) {
                shown.push(el);
            }
        }
        shown
    }

    /// Retries `act` on the first visible element matching `css` until it succeeds
    /// (the page may re-render it in between), for up to 10 s.
    async fn with_visible<T>(
        &self,
        css: &str,
        act: impl AsyncFn(&Element) -> Result<T, CmdError>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let error = match self.visible(css).await.first() {
                Some(el) => match act(el).await {
                    Ok(value) => return value,
                    Err(e) => e.to_string(),
                },
                None => "none visible".to_string(),
            };
            if Instant::now() >= deadline {
                self.fail(&format!("no usable element {css} within 10 s ({error})"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first visible element matching `css`, waiting up to 10 s.
    pub async fn find(&self, css: &str) -> Element {
        self.with_visible(css, async |el| Ok(el.clone())).await
    }

    /// How many elements matching `css` are visible now (no waiting).
    pub async fn find_all_visible(&self, css: &str) -> usize {
        self.visible(css).await.len()
    }

    /// Waits up to 10 s until the element matching `css` contains `text`; returns its text.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = match self.visible(css).await.first() {
                Some(el) => el.text().await.unwrap_or_default(),
                None => String::new(),
            };
            if got.contains(text) {
                return got;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("{css} never showed {text:?}; it shows {got:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, el: &Element) -> String {
        el.text().await.expect("element text")
    }

    pub async fn attribute(&self, el: &Element, name: &str) -> Option<String> {
        el.attr(name).await.expect("element attribute")
    }

    pub async fn click(&self, css: &str) {
        self.with_visible(css, async |el| el.click().await).await
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.with_visible(css, async |el| {
            el.clear().await?;
            el.send_keys(text).await
        })
        .await
    }

    /// Presses keys on the focused element (e.g. "\u{E004}" for Tab, "\u{E007}" for Enter).
    pub async fn keys(&self, keys: &str) {
        let presses = keys
            .chars()
            .fold(KeyActions::new("keyboard".into()), |seq, c| {
                seq.then(KeyAction::Down { value: c })
                    .then(KeyAction::Up { value: c })
            });
        self.client.perform_actions(presses).await.expect("keys");
    }

    /// The id attribute of the focused element.
    pub async fn active_id(&self) -> String {
        let el = self.client.active_element().await.expect("active element");
        self.attribute(&el, "id").await.unwrap_or_default()
    }

    /// Logs in on the settings page at `settings_url` as `email` of `firm`
    /// (with the test password) and waits until the page names the firm.
    pub async fn log_in(&self, settings_url: &str, firm: &str, email: &str) {
        self.goto(settings_url).await;
        self.type_into("#login-firm", firm).await;
        self.type_into("#login-email", email).await;
        self.type_into("#login-password", crate::settings::PASSWORD)
            .await;
        self.click("#login-submit").await;
        self.wait_text("#who-firm", firm).await;
    }

    /// Scrolls the first visible element matching `css` to the top of the window (before a screenshot).
    pub async fn scroll_to(&self, css: &str) {
        let el = self.find(css).await;
        let arg = serde_json::to_value(&el).expect("element as JSON");
        self.client
            .execute("arguments[0].scrollIntoView({block: 'start'});", vec![arg])
            .await
            .expect("scroll");
    }

    /// Resizes the window (to check the narrow layout).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
    }

    /// Saves a PNG screenshot as `tests/artifacts/<name>.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts");
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Panics with `what`, a screenshot, the browser console and the start of the page.
    async fn fail(&self, what: &str) -> ! {
        let shot = self.screenshot("failure-last").await;
        let console = self.client.issue_cmd(BrowserLog).await;
        let source = self.client.source().await.unwrap_or_default();
        let page: String = source.chars().take(600).collect();
        panic!(
            "{what} (screenshot {}; console {console:?}; page {page})",
            shot.display()
        );
    }

    /// Ends the browser session and chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// A failing test never reaches `quit`: chromedriver's `/shutdown` closes Chromium
    /// too (killing chromedriver alone would leave it running); then chromedriver is killed.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = s.read(&mut [0; 256]);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.driver.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's `POST /session/{id}/se/log` for the browser console, which fantoccini does not wrap.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}
