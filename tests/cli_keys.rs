//! `hotline keys …` as an operator runs it: keys it creates authenticate
//! against the same database, lists show prefixes (never keys), and revoked
//! keys stop working.

use std::path::Path;
use std::process::{Command, Output};

use hotline::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_hotline");

/// Runs `hotline` with `args` in `dir`, its data directory, and nothing
/// else from the environment (so no DATABASE_URL sneaks in).
fn hotline(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("HOTLINE_DATA_DIR", dir.join("data"))
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[tokio::test]
async fn keys_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();

    let out = hotline(
        dir.path(),
        &["keys", "create", "--org", "acme", "--name", "ci"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let key = stdout(&out).trim().to_owned();
    assert!(key.starts_with("hl_live_") && key.len() == 72, "{key:?}");
    assert!(stderr(&out).contains("cannot be shown again"));
    // A second key for the same org reuses the org.
    let out = hotline(dir.path(), &["keys", "create", "--org", "acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = stdout(&out).trim().to_owned();
    assert_ne!(second, key);

    let url = hotline::store::sqlite_url(&dir.path().join("data/hotline.db"));
    let store = Store::open(&url).await.unwrap();
    let (org_id, key_id) = store.authenticate(&key).await.unwrap().expect("key works");
    assert_eq!(store.get_org_by_name("acme").await.unwrap().id, org_id);
    store.close().await;

    let out = hotline(dir.path(), &["keys", "list", "--org", "acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&out);
    let line = list
        .lines()
        .find(|l| l.starts_with(&key_id))
        .unwrap_or_else(|| panic!("{key_id} not listed:\n{list}"));
    assert!(line.contains(&key[..12]) && line.contains("ci") && line.ends_with("active"));
    assert_eq!(list.lines().count(), 3, "header and two keys:\n{list}");
    assert!(
        !list.contains(&key) && !list.contains(&second),
        "keys never listed"
    );

    let out = hotline(dir.path(), &["keys", "revoke", &key_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&key_id));
    let list = stdout(&hotline(dir.path(), &["keys", "list", "--org", "acme"]));
    let line = list.lines().find(|l| l.starts_with(&key_id)).unwrap();
    assert!(line.ends_with("revoked"), "{line}");

    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.authenticate(&key).await.unwrap(), None);
    assert!(store.authenticate(&second).await.unwrap().is_some());
    store.close().await;

    let out = hotline(
        dir.path(),
        &["keys", "revoke", "key_000000000000000000000000"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no API key"), "{}", stderr(&out));
    let out = hotline(dir.path(), &["keys", "list", "--org", "nobody"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no org named \"nobody\""),
        "{}",
        stderr(&out)
    );
}
