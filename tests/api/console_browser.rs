//! The console in a real browser: headless Chromium driven through chromedriver (WebDriver, `fantoccini`)
//! signs in as the DSRSG, opens "my tasks", opens the proposal and approves it in the `hc` hat, at 360 px
//! wide. Without chromedriver the test prints a skip notice and passes — except under `CI=true`, where
//! `.ci/run` installs Debian's `chromium` + `chromium-driver` and a missing driver is a failure.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::approval::desk;
use crate::support::USER_PASSWORD;

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(program: &PathBuf) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver { child, port };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

/// Waits up to ten seconds for the browser to arrive at a path ending in `suffix` (a click's navigation runs
/// on the browser's schedule, not the test's).
async fn wait_for_path(client: &fantoccini::Client, suffix: &str) -> Result<(), fantoccini::error::CmdError> {
    let started = Instant::now();
    loop {
        let url = client.current_url().await?;
        if url.path().ends_with(suffix) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            let source = client.source().await?;
            panic!("still at {url}, not at …{suffix}: {source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to ten seconds for the page to contain `text`.
async fn wait_for_text(client: &fantoccini::Client, text: &str) -> Result<(), fantoccini::error::CmdError> {
    let started = Instant::now();
    loop {
        let source = client.source().await?;
        if source.contains(text) {
            return Ok(());
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no “{text}” in {source}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With `QIP_CONSOLE_SCREENSHOTS=<dir>`, saves what the browser shows (360 px wide) there, for docs/.
async fn snap(client: &fantoccini::Client, name: &str) -> Result<(), fantoccini::error::CmdError> {
    if let Some(dir) = std::env::var_os("QIP_CONSOLE_SCREENSHOTS") {
        let png = client.screenshot().await?;
        std::fs::write(PathBuf::from(dir).join(name), png).unwrap();
    }
    Ok(())
}

#[test]
fn a_decider_signs_in_opens_a_task_and_approves_it_in_headless_chromium() {
    let Some(program) = find_program("chromedriver") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "chromedriver is missing under CI; .ci/run installs chromium and chromium-driver"
        );
        eprintln!(
            "SKIPPED console_browser: chromedriver not found (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let d = desk("50000.00");
    let (id, _) = d.in_review("Market latrines", "20000.00");
    let base = d.m.app.url("");
    let driver = start_driver(&program);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome: Result<(), fantoccini::error::CmdError> = runtime.block_on(async {
        let mut chrome = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=360,800"],
            // A phone's viewport: desktop Chrome windows are never narrower than 500 px.
            "mobileEmulation": {"deviceMetrics": {"width": 360, "height": 800, "pixelRatio": 1.0}}
        });
        if let Some(binary) = find_program("chromium") {
            chrome["binary"] = json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), chrome);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session");

        client.goto(&format!("{base}/")).await?;
        assert!(client.current_url().await?.path().ends_with("/console/sign-in"));
        snap(&client, "console-sign-in.png").await?;
        client.find(Locator::Id("username")).await?.send_keys("dsrsg").await?;
        client.find(Locator::Id("password")).await?.send_keys(USER_PASSWORD).await?;
        client.find(Locator::Css("main form button[type=submit]")).await?.click().await?;

        wait_for_path(&client, "/console/tasks").await?;
        snap(&client, "console-tasks.png").await?;
        let task = client.find(Locator::Css(".task a")).await?;
        assert!(task.text().await?.contains("Market latrines"));
        task.click().await?;

        wait_for_path(&client, &format!("/console/proposals/{id}")).await?;
        let source = client.source().await?;
        assert!(source.contains("20000.00"));
        snap(&client, "console-proposal.png").await?;
        client.find(Locator::Id("comment")).await?.send_keys("Cleared in the browser").await?;
        client.find(Locator::Css("#decide ~ form button[type=submit]")).await?.click().await?;

        wait_for_text(&client, "Your approval is recorded.").await?;
        // No horizontal scrolling at 360 px.
        let width = client
            .execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![])
            .await?;
        let (scroll, inner) = (width[0].as_u64().unwrap_or(9999), width[1].as_u64().unwrap_or(0));
        eprintln!("console_browser: page {scroll} px wide in a {inner} px window");
        assert!(inner == 360 && scroll <= 360, "the page is {scroll} px wide in a {inner} px window");
        client.close().await?;
        Ok(())
    });
    outcome.unwrap();

    let approval = d.approval(&id);
    assert_eq!(approval["steps"][0]["status"], "approved");
    assert_eq!(approval["steps"][0]["decided_hat"], "hc");
    assert!(
        d.m.app
            .audit_rows()
            .iter()
            .any(|r| r.action == "approval.decide" && r.hat.as_deref() == Some("hc"))
    );
}
