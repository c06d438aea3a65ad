//! A real headless Chromium (Debian's `chromium`) driven through
//! `chromedriver` over WebDriver, for the console tests. Each `Browser` has
//! its own driver process on an ephemeral loopback port and a fresh
//! profile directory; both go away on drop. A missing browser or driver
//! fails the test: nothing here skips.

use crate::net::free_port;
use crate::{poll_until, wait_for, DEADLINE};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Flags this machine's Chromium needs: headless, no sandbox as root, and
/// no background traffic (the network is closed; everything is loopback).
const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--window-size=1280,900",
];

pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    profile: tempfile::TempDir,
    /// The origin pages are loaded from, e.g. `http://127.0.0.1:41234`.
    pub base: String,
}

/// Chromedriver's log endpoint: the page's console messages.
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
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

impl Browser {
    /// Starts Chromium for pages served at `base` (no trailing slash).
    pub fn start(base: &str) -> Browser {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let (driver, url) = Self::driver(profile.path());
        let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            profile.path().join("chrome").display()
        ));
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = caps.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = rt
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&url),
            )
            .unwrap_or_else(|e| panic!("cannot start Chromium through {url}: {e}"));
        Browser {
            rt,
            client: Some(client),
            driver,
            profile,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Starts chromedriver on a free loopback port and waits until it
    /// answers; retries when another process took the port first.
    fn driver(dir: &Path) -> (Child, String) {
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn chromedriver");
            let url = format!("http://127.0.0.1:{port}");
            let ready = poll_until(DEADLINE, || {
                if child.try_wait().ok().flatten().is_some() {
                    return Some(false);
                }
                let status = reqwest::blocking::get(format!("{url}/status")).ok()?;
                let v: Value = status.json().ok()?;
                v["value"]["ready"].as_bool().filter(|r| *r).map(|_| true)
            });
            if ready == Some(true) {
                return (child, url);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("chromedriver did not start")
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Loads `path` (e.g. `/` or `/#/clients`) from the server.
    pub fn goto(&self, path: &str) {
        self.rt
            .block_on(self.c().goto(&format!("{}{path}", self.base)))
            .unwrap();
    }

    /// Runs `script` in the page and returns its value.
    pub fn js(&self, script: &str) -> Value {
        self.rt
            .block_on(self.c().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The text of the first element matching `css`, if there is one.
    pub fn text_of(&self, css: &str) -> Option<String> {
        self.rt.block_on(async {
            let el = self.c().find(Locator::Css(css)).await.ok()?;
            el.text().await.ok()
        })
    }

    pub fn exists(&self, css: &str) -> bool {
        self.rt
            .block_on(self.c().find_all(Locator::Css(css)))
            .map(|v| !v.is_empty())
            .unwrap_or(false)
    }

    /// Waits until the first element matching `css` contains `text`;
    /// returns its whole text.
    pub fn wait_text(&self, css: &str, text: &str) -> String {
        let found = poll_until(DEADLINE, || self.text_of(css).filter(|t| t.contains(text)));
        found.unwrap_or_else(|| {
            panic!(
                "timed out waiting for {css:?} to show {text:?}; it shows {:?}; page:\n{}",
                self.text_of(css),
                self.text_of("body").unwrap_or_default()
            )
        })
    }

    /// Waits until an element matches `css`.
    pub fn wait_for(&self, css: &str) {
        wait_for(&format!("{css} in the page"), DEADLINE, || {
            self.exists(css).then_some(())
        })
    }

    /// Replaces the value of the input matching `css` by typing: select
    /// all, delete, then `value`, so the page sees input events even when
    /// the new value is empty (WebDriver's clear fires none).
    pub fn fill(&self, css: &str, value: &str) {
        self.wait_for(css);
        let keys = format!("\u{E009}a\u{E000}\u{E003}{value}");
        self.rt
            .block_on(async {
                let el = self.c().find(Locator::Css(css)).await?;
                el.send_keys(&keys).await
            })
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    /// Chooses `value` in the `<select>` matching `css`, once it offers it.
    pub fn select(&self, css: &str, value: &str) {
        let (css_js, value_js) = (json!(css), json!(value));
        let script = format!(
            "const s = document.querySelector({css_js}); if (!s) return null; \
             if (![...s.options].some(o => o.value === {value_js})) return null; \
             s.value = {value_js}; s.dispatchEvent(new Event('input', {{bubbles: true}})); return s.value"
        );
        wait_for(&format!("{value} in {css}"), DEADLINE, || {
            (self.js(&script) == json!(value)).then_some(())
        });
    }

    pub fn click(&self, css: &str) {
        self.wait_for(css);
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks the first visible button whose text is `text`.
    pub fn click_button(&self, text: &str) {
        let xpath = format!("//button[normalize-space()='{text}']");
        let done = poll_until(DEADLINE, || {
            self.rt.block_on(async {
                for el in self.c().find_all(Locator::XPath(&xpath)).await.ok()? {
                    if el.is_displayed().await.unwrap_or(false) && el.click().await.is_ok() {
                        return Some(());
                    }
                }
                None
            })
        });
        done.unwrap_or_else(|| panic!("no visible button {text:?}"));
    }

    /// Types keys into whatever has focus (`\u{E004}` is Tab, `\u{E007}`
    /// Enter).
    pub fn keys(&self, keys: &str) {
        self.rt
            .block_on(async {
                let el = self.c().active_element().await?;
                el.send_keys(keys).await
            })
            .unwrap();
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.rt
            .block_on(self.c().set_window_size(width, height))
            .unwrap();
    }

    /// Saves a PNG of the page as `<name>.png` in `$PORTUNUS_SCREENSHOTS`
    /// (the docs refresh their pictures this way) or the profile dir.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = std::env::var_os("PORTUNUS_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.profile.path().to_path_buf());
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Console messages at level SEVERE since the last call.
    pub fn console_errors(&self) -> Vec<String> {
        let log = self
            .rt
            .block_on(self.c().issue_cmd(BrowserLog))
            .expect("chromedriver's browser log");
        log.as_array()
            .expect("log entries")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Where downloads land.
    pub fn downloads(&self) -> PathBuf {
        self.profile.path().join("downloads")
    }

    /// The page is clean: no console error and nothing fetched from
    /// another origin. API answers in the 4xx range are expected (tests
    /// provoke them and the pages show them); Chromium logs each as a
    /// failed resource, which is no script error. A 5xx is.
    pub fn assert_clean(&self) {
        let errors: Vec<String> = self
            .console_errors()
            .into_iter()
            .filter(|e| !(e.contains("/v1/") && e.contains("responded with a status of 4")))
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        let foreign = self.foreign_requests();
        assert!(foreign.is_empty(), "requests off the origin: {foreign:#?}");
    }

    /// Every resource the page loaded from another origin.
    pub fn foreign_requests(&self) -> Vec<String> {
        let names = self.js(
            "return performance.getEntriesByType('resource').map(e => e.name)\
             .concat(performance.getEntriesByType('navigation').map(e => e.name))",
        );
        names
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n.as_str())
            .filter(|n| !n.starts_with(&format!("{}/", self.base)))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
