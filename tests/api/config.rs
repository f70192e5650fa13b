//! Configuration precedence (defaults < file < environment), unknown keys, and production's security floor.

use std::io::Write;

use qip_pool::config::{Mode, Settings};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_load_with_nothing_else() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert_eq!(s.mode, Mode::Development);
    assert_eq!(s.server.bind, "127.0.0.1:8080");
    assert_eq!(s.database.url.expose(), "sqlite://./data/qip-pool.sqlite3");
    assert_eq!(s.server.json_limit_bytes, 262_144);
    assert_eq!(s.server.max_page_size, 200);
    assert_eq!(s.auth.argon2_memory_kib, 19_456);
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    let f = file(
        "[server]\nbind = \"0.0.0.0:9000\"\nmax_page_size = 100\n[database]\nurl = \"sqlite://file.db\"\n",
    );
    let s = Settings::load_from(Some(f.path()), env(&[])).unwrap();
    assert_eq!(s.server.bind, "0.0.0.0:9000");
    assert_eq!(s.database.url.expose(), "sqlite://file.db");
    assert_eq!(s.server.max_page_size, 100);

    let s = Settings::load_from(
        Some(f.path()),
        env(&[
            ("QIP__SERVER__BIND", "127.0.0.1:7000"),
            ("QIP__DATABASE__POOL_SIZE", "3"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.bind, "127.0.0.1:7000");
    assert_eq!(s.database.pool_size, 3);
    assert_eq!(s.server.max_page_size, 100, "untouched file value stays");
}

#[test]
fn unknown_keys_are_rejected_in_files_and_env() {
    let f = file("[server]\nbnid = \"0.0.0.0:9000\"\n");
    let err = Settings::load_from(Some(f.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bnid"), "{err}");
    let err = Settings::load_from(None, env(&[("QIP__DATABSE__URL", "x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("databse"), "{err}");
}

#[test]
fn production_requires_a_strong_secret_and_full_argon2_cost() {
    let err = Settings::load_from(None, env(&[("QIP__MODE", "production")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("jwt_secret"), "{err}");
    let err = Settings::load_from(
        None,
        env(&[
            ("QIP__MODE", "production"),
            ("QIP__AUTH__JWT_SECRET", "0123456789abcdef0123456789abcde"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("31 bytes"), "{err}");
    // Long enough but guessable: a sequence, a placeholder, a repeat. Each refused, saying why.
    for (guessable, why) in [
        ("0123456789abcdef0123456789abcdef", "patterns"),
        ("changeme-changeme-changeme-changeme", "placeholder"),
        ("replace-this-secret-before-going-live", "placeholder"),
        ("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "distinct"),
    ] {
        let err = Settings::load_from(
            None,
            env(&[("QIP__MODE", "production"), ("QIP__AUTH__JWT_SECRET", guessable)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("guessable") && err.contains(why),
            "{guessable}: {err}"
        );
    }
    let previous =
        file("[auth]\nprevious_keys = [{ kid = \"k0\", secret = \"abcdefghijklmnopqrstuvwxyz012345\" }]\n");
    let err = Settings::load_from(
        Some(previous.path()),
        env(&[
            ("QIP__MODE", "production"),
            ("QIP__AUTH__JWT_SECRET", "q3Vh8Zk1XoP2mNw7Lr5TjYb0cF4sGd9E"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("previous_keys `k0` is guessable"), "{err}");
    // A random 32-byte secret (as `openssl rand -hex 32` prints it) passes.
    let strong = "3c9a7f0e51b24d68e0f97a1c2b5d8e437a06c1f92d4b8e53a1f07c6d29e4b815";
    let s = Settings::load_from(
        None,
        env(&[("QIP__MODE", "production"), ("QIP__AUTH__JWT_SECRET", strong)]),
    )
    .unwrap();
    assert_eq!(s.mode, Mode::Production);
    let err = Settings::load_from(
        None,
        env(&[
            ("QIP__MODE", "production"),
            ("QIP__AUTH__JWT_SECRET", strong),
            ("QIP__AUTH__ARGON2_MEMORY_KIB", "1024"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("argon2"), "{err}");
}

#[test]
fn secrets_never_print() {
    let s = Settings::load_from(
        None,
        env(&[("QIP__AUTH__JWT_SECRET", "super-secret-value-000000000000000")]),
    )
    .unwrap();
    let debug = format!("{s:?}");
    assert!(!debug.contains("super-secret"), "{debug}");
}
