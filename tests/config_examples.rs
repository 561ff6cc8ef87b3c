//! The configuration examples users copy from must stay valid.

use hotline::config::Config;

fn load_text(text: &str) -> Config {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    Config::load(Some(f.path()), []).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

#[test]
fn readme_example_is_valid() {
    let readme = include_str!("../README.md");
    let start = readme.find("```toml\n").expect("README has a toml example") + 8;
    let len = readme[start..].find("```").unwrap();
    let config = load_text(&readme[start..start + len]);
    assert_eq!(config.trunks.len(), 1);
    assert_eq!(config.rtp.call_capacity(), 5000);
}

#[test]
fn deploy_example_is_valid() {
    let config = load_text(include_str!("../deploy/hotline.toml"));
    assert_eq!(
        config.data_dir,
        std::path::PathBuf::from("/var/lib/hotline")
    );
}
