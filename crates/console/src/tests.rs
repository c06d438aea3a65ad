use super::*;
use axum::body::Body;
use axum::http::Request;
use std::io::Write;
use tower::ServiceExt;

async fn get(path: &str) -> Response {
    router()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

async fn text(r: Response) -> String {
    let b = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    String::from_utf8(b.to_vec()).unwrap()
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let version = assets::VERSION.as_str();
    for path in [
        "/".to_string(),
        "/index.html".to_string(),
        format!("/assets/{version}/js/main.js"),
        "/assets/0000/js/main.js".to_string(),
    ] {
        let r = get(&path).await;
        let csp = header(&r, "content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&r, "referrer-policy"), "same-origin", "{path}");
    }
}

#[tokio::test]
async fn the_shell_is_revalidated_and_assets_are_immutable() {
    let r = get("/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert!(header(&r, "content-type").starts_with("text/html"));
    let html = text(r).await;
    let prefix = format!("/assets/{}/", *assets::VERSION);
    assert!(html.contains(&format!("{prefix}js/main.js")), "{html}");
    for a in ASSETS {
        let r = get(&format!("{prefix}{}", a.path)).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", a.path);
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&r, "content-type"), a.mime);
    }
    // Another build's assets, or a path outside the table, are not served.
    let stale = get("/assets/0123456789abcdef/js/main.js").await;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&stale, "cache-control"), "no-store");
    let r = get(&format!("{prefix}../Cargo.toml")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Every file of `web/` is either the shell, served, or documentation.
#[test]
fn every_web_file_is_served() {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into());
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    for f in files {
        let doc = f == "index.html" || f.starts_with("vendor/LICENSE") || f.ends_with(".md");
        assert!(
            doc || ASSETS.iter().any(|a| a.path == f),
            "web/{f} is not in the asset table"
        );
    }
}

/// The whole console, gzipped file by file as a server would send it,
/// stays under 150 KB.
#[test]
fn gzipped_size_budget() {
    let mut total = 0;
    let bodies = ASSETS
        .iter()
        .map(|a| a.body)
        .chain([assets::shell().as_bytes()]);
    for body in bodies {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(body).unwrap();
        total += gz.finish().unwrap().len();
    }
    assert!(total < 150 * 1024, "console is {total} bytes gzipped");
}

/// What the CSP forbids is absent from the source too: inline scripts,
/// inline event handlers and styles in the shell, `eval` anywhere.
#[test]
fn no_inline_script_or_eval() {
    let html = assets::shell();
    for bad in [
        "<script>",
        " onload=",
        " onclick=",
        " style=",
        "javascript:",
    ] {
        assert!(!html.contains(bad), "{bad} in the shell");
    }
    assert!(html.contains("<script type=\"module\" src="));
    for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let src = std::str::from_utf8(a.body).unwrap();
        for bad in ["eval(", "new Function"] {
            assert!(!src.contains(bad), "{bad} in {}", a.path);
        }
        // Our own code renders through Preact only and keeps nothing in
        // browser storage (the vendored renderer supports innerHTML for
        // callers that ask; none does).
        if a.path.starts_with("js/") {
            for bad in ["innerHTML", "localStorage", "sessionStorage", "indexedDB"] {
                assert!(!src.contains(bad), "{bad} in {}", a.path);
            }
        }
    }
}
