//! The dashboard in a real headless Chromium (Debian's `chromium` and `chromedriver`,
//! installed by `scripts/install-test-deps.sh`), driven over WebDriver: the overview of
//! the seven examples, a filter, a spec page, an edit whose event and new phase appear
//! without a reload, and a wiped prefix whose blocked deletion set is approved with the
//! token typed into the page. Screenshots go to `target/screenshots/`.
//!
//! A missing browser fails this test with the command that installs it; it never skips.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use steward_e2e::{Env, wait_for};
use steward_operator::{OperatorHandle, Phase};

/// Bound of every wait on the page.
const PAGE_WAIT: Duration = Duration::from_secs(30);

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn browser() -> (PathBuf, PathBuf) {
    let missing = |what: &str| -> ! {
        panic!(
            "the dashboard's browser test needs Debian's `{what}` on PATH and it is missing: \
             run scripts/install-test-deps.sh (as root), or \
             `sudo apt-get update && sudo apt-get install -y chromium chromium-driver`"
        )
    };
    let chromium = on_path("chromium").unwrap_or_else(|| missing("chromium"));
    let driver = on_path("chromedriver").unwrap_or_else(|| missing("chromedriver"));
    (chromium, driver)
}

/// `chromedriver` on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(path: &PathBuf) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(driver: &Driver, chromium: &PathBuf) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let mut last = String::new();
    // chromedriver takes a moment to listen: at most 100 tries, 100 ms apart.
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return c,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot open a Chromium session through chromedriver at {url}: {last}");
}

async fn screenshot(c: &Client, name: &str) {
    let dir = steward_e2e::repo_path("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The text of every element matching `css`.
async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap_or_default());
    }
    out
}

async fn attr(c: &Client, css: &str, name: &str) -> Option<String> {
    let e = c.find(Locator::Css(css)).await.ok()?;
    e.attr(name).await.ok().flatten()
}

async fn serve(handle: OperatorHandle) -> SocketAddr {
    let router =
        steward_operator::api::router(handle.clone()).merge(steward_dashboard::router(handle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn push_examples(env: &Env) -> Vec<(String, u64)> {
    let dir = steward_e2e::repo_path("deploy/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    let mut pushed = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let key = steward_spec::load("x.yaml", &text, None)
            .spec
            .unwrap()
            .key();
        let g = env.put_spec(&key, &text).await;
        pushed.push((key, g));
    }
    for (key, g) in &pushed {
        env.wait_synced(key, *g).await;
    }
    pushed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_filters_follows_live_and_approves_gc_in_chromium() {
    let (chromium, driver_path) = browser();
    let mut env = Env::start().await;
    let handle = env.operator("a").await;
    let pushed = push_examples(&env).await;
    let addr = serve(handle.clone()).await;
    let base = format!("http://{addr}");
    let driver = Driver::start(&driver_path);
    let c = connect(&driver, &chromium).await;

    // The overview: seven specs, all Synced, counted per phase.
    c.goto(&format!("{base}/")).await.unwrap();
    let rows = texts(&c, "#specs tbody th").await;
    assert_eq!(rows.len(), 7, "{rows:?}");
    let synced = c
        .find(Locator::Css(".count.healthy .n"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(synced, "7");
    // The page and its two assets stay far under 200 KB.
    let weight = c
        .execute(
            "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
             .filter(e => !e.name.includes('/api/v1/events'))\
             .reduce((n, e) => n + e.decodedBodySize, 0);",
            vec![],
        )
        .await
        .unwrap();
    let weight = weight.as_u64().unwrap();
    assert!(
        weight > 0 && weight < 200 * 1024,
        "page weight {weight} bytes"
    );
    screenshot(&c, "01-overview").await;

    // Filter: namespace `trading` through the form (a plain GET, no script needed).
    c.find(Locator::Css("#f-ns option[value='trading']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#f-q"))
        .await
        .unwrap()
        .send_keys("order")
        .await
        .unwrap();
    c.find(Locator::Css("form.filter button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let filtered = wait_for("the filtered overview", PAGE_WAIT, || async {
        let url = c.current_url().await.map_err(|e| e.to_string())?;
        let rows = texts(&c, "#specs tbody th").await;
        if url.query().is_some_and(|q| q.contains("ns=trading")) && rows.len() == 1 {
            Ok(rows)
        } else {
            Err(format!("{url} {rows:?}"))
        }
    })
    .await;
    assert_eq!(filtered, ["trading/order-api"]);
    screenshot(&c, "02-filtered").await;

    // Open the spec.
    c.find(Locator::LinkText("trading/order-api"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let g1 = pushed
        .iter()
        .find(|(k, _)| k == "trading/order-api")
        .unwrap()
        .1;
    wait_for("the spec page", PAGE_WAIT, || async {
        let h1 = texts(&c, "h1").await;
        let observed = attr(&c, "#summary", "data-observed").await;
        if h1 == ["trading/order-api"] && observed == Some(g1.to_string()) {
            Ok(())
        } else {
            Err(format!("{h1:?} {observed:?}"))
        }
    })
    .await;
    let conditions = texts(&c, "table.conditions tbody th").await;
    assert!(
        conditions.contains(&"Accepted".to_owned()),
        "{conditions:?}"
    );
    let objects = texts(&c, "article.object h3").await;
    assert!(
        objects.contains(&"nomad-job order-api".to_owned()),
        "{objects:?}"
    );
    let document = texts(&c, "#document-title").await;
    assert_eq!(document, [format!("Spec document (generation {g1})")]);
    // Live updates are connected before anything changes.
    wait_for("the live stream", PAGE_WAIT, || async {
        match texts(&c, "#live-state").await.first() {
            Some(t) if t == "Live" || t.starts_with("Live:") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    screenshot(&c, "03-spec").await;

    // Push an edit: its event and new phase appear without a reload.
    c.execute("window.stewardNotReloaded = true; return true;", vec![])
        .await
        .unwrap();
    let events_before = texts(&c, "#events > li").await.len();
    let text = std::fs::read_to_string(steward_e2e::repo_path("deploy/examples/order-api.yaml"))
        .unwrap()
        .replace("order-api:1.4.2", "order-api:1.4.3");
    assert!(text.contains("order-api:1.4.3"));
    let g2 = env.put_spec("trading/order-api", &text).await;
    env.wait_synced("trading/order-api", g2).await;
    wait_for(
        "the edit's event and phase on the page",
        PAGE_WAIT,
        || async {
            let observed = attr(&c, "#summary", "data-observed").await;
            let phase = attr(&c, "#summary", "data-phase").await;
            let events = texts(&c, "#events > li").await;
            let updated = events
                .iter()
                .any(|e| e.contains("Updated") && e.contains("order-api"));
            if observed == Some(g2.to_string())
                && phase.as_deref() == Some(Phase::Synced.as_str())
                && updated
                && events.len() > events_before
            {
                Ok(())
            } else {
                Err(format!("{observed:?} {phase:?} {events:?}"))
            }
        },
    )
    .await;
    let kept = c
        .execute("return window.stewardNotReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the page was reloaded");
    assert_eq!(
        texts(&c, "#document-title").await,
        [format!("Spec document (generation {g2})")]
    );
    screenshot(&c, "04-spec-after-edit").await;

    // Wipe the prefix: the GC page shows the blocked set, live; approve with the token.
    c.goto(&format!("{base}/gc")).await.unwrap();
    wait_for("the GC page's live stream", PAGE_WAIT, || async {
        match texts(&c, "#live-state").await.first() {
            Some(t) if t == "Live" || t.starts_with("Live:") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    c.execute("window.stewardNotReloaded = true; return true;", vec![])
        .await
        .unwrap();
    assert!(
        env.clients
            .consul
            .kv_delete_tree("steward/specs/")
            .await
            .unwrap()
    );
    let digest = wait_for("the blocked set on the GC page", PAGE_WAIT, || async {
        match (
            texts(&c, "#gc-digest").await.first().cloned(),
            handle.gc_blocked(),
        ) {
            (Some(shown), Some(set)) if shown == set.digest => Ok(shown),
            (shown, set) => Err(format!("{shown:?} {:?}", set.map(|s| s.digest))),
        }
    })
    .await;
    let kept = c
        .execute("return window.stewardNotReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the GC page was reloaded");
    screenshot(&c, "05-gc-blocked").await;

    // A wrong token is refused and deletes nothing.
    c.find(Locator::Css("#gc-token"))
        .await
        .unwrap()
        .send_keys("not-the-token-0123456789")
        .await
        .unwrap();
    c.find(Locator::Css("#gc-approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = wait_for("the refusal", PAGE_WAIT, || async {
        match texts(&c, "#notice").await.first() {
            Some(t) => Ok(t.clone()),
            None => Err("no notice".to_owned()),
        }
    })
    .await;
    assert!(refused.starts_with("Not approved"), "{refused}");
    assert!(handle.gc_blocked().is_some());

    c.find(Locator::Css("#gc-token"))
        .await
        .unwrap()
        .send_keys(steward_e2e::API_TOKEN)
        .await
        .unwrap();
    c.find(Locator::Css("#gc-approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let approved = wait_for("the approval", PAGE_WAIT, || async {
        match texts(&c, "#notice").await.first() {
            Some(t) if t.starts_with("Approved") => Ok(t.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(approved.contains(&digest), "{approved}");
    let url = c.current_url().await.unwrap();
    assert!(
        !url.as_str().contains(steward_e2e::API_TOKEN),
        "the token is in the URL: {url}"
    );
    screenshot(&c, "06-gc-approved").await;
    wait_for("the examples' jobs to be collected", PAGE_WAIT, || async {
        let mut left = Vec::new();
        for (key, _) in &pushed {
            let (ns, name) = key.split_once('/').unwrap();
            if env.job(ns, name).await.is_some_and(|j| !j.view.stop) {
                left.push(key.clone());
            }
        }
        if left.is_empty() && handle.gc_blocked().is_none() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;

    c.close().await.unwrap();
    drop(driver);
    env.finish().await;
}
