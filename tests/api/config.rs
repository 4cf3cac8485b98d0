//! Start-up checks on the configuration and the generated JWT secret.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use clap::Parser as _;
use confab::cli::{Cli, Command};
use confab::config::Environment;
use confab::{Application, Config};
use secrecy::SecretString;

use crate::helpers::{spawn_app_with, start, test_config, TestSchema};

/// Builds an application from `config` and returns the start-up error text.
async fn build_error(config: Config) -> String {
    match Application::build(config).await {
        Ok(_) => panic!("the configuration was accepted"),
        Err(error) => format!("{error:#}"),
    }
}

fn config_with(customize: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Config) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path());
    customize(&mut config);
    (data_dir, config)
}

#[tokio::test]
async fn short_secret_is_rejected() {
    let (_dir, config) = config_with(|config| {
        config.jwt_secret = Some(SecretString::from(
            "only-31-bytes-long-secret-value".to_owned(),
        ));
    });
    let error = build_error(config).await;
    assert!(error.contains("CONFAB_JWT_SECRET"), "{error}");
    assert!(error.contains("31 bytes"), "{error}");
    assert!(error.contains("at least 32 bytes"), "{error}");
}

#[tokio::test]
async fn production_requires_secret() {
    let (_dir, config) = config_with(|config| {
        config.environment = Environment::Production;
        config.jwt_secret = None;
        config.cors_origins = Some("https://chat.example.test".to_owned());
    });
    let error = build_error(config).await;
    assert!(error.contains("CONFAB_JWT_SECRET"), "{error}");
    assert!(error.contains("required in production"), "{error}");
}

#[tokio::test]
async fn production_requires_cors_origins() {
    for origins in [None, Some(""), Some(" , ")] {
        let (_dir, config) = config_with(|config| {
            config.environment = Environment::Production;
            config.cors_origins = origins.map(str::to_owned);
        });
        let error = build_error(config).await;
        assert!(
            error.contains("CONFAB_CORS_ORIGINS"),
            "{origins:?}: {error}"
        );
    }
}

#[tokio::test]
async fn production_starts_with_both_settings() {
    let app = spawn_app_with(|config| {
        config.environment = Environment::Production;
        config.cors_origins = Some("https://chat.example.test".to_owned());
    })
    .await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn invalid_settings_name_their_variable() {
    type Customize = fn(&mut Config);
    let cases: [(&str, Customize); 13] = [
        ("CONFAB_CORS_ORIGINS", |c| {
            c.cors_origins = Some("https://a.example.test/path".to_owned())
        }),
        ("CONFAB_CORS_ORIGINS", |c| {
            c.cors_origins = Some("*, https://a.example.test".to_owned())
        }),
        ("CONFAB_ACCESS_TOKEN_TTL", |c| {
            c.access_token_ttl = Duration::from_millis(500)
        }),
        ("CONFAB_ACCESS_TOKEN_TTL", |c| {
            c.access_token_ttl = Duration::from_secs(400 * 24 * 3600)
        }),
        ("CONFAB_CLOCK_LEEWAY", |c| {
            c.clock_leeway = Duration::from_secs(u64::MAX / 2)
        }),
        ("CONFAB_REFRESH_TOKEN_TTL", |c| {
            c.refresh_token_ttl = Duration::from_secs(366 * 24 * 3600)
        }),
        ("CONFAB_DB_STATEMENT_TIMEOUT", |c| {
            c.storage.db_statement_timeout = Duration::from_secs(25 * 24 * 3600)
        }),
        ("CONFAB_ARGON2_MEMORY_KIB", |c| c.argon2_memory_kib = 1024),
        ("CONFAB_REVOCATION_PURGE_INTERVAL", |c| {
            c.revocation_purge_interval = Duration::ZERO
        }),
        ("CONFAB_WS_MAX_MESSAGE_BYTES", |c| {
            c.ws_max_message_bytes = 1023
        }),
        ("CONFAB_WS_MAX_SOCKETS_PER_USER", |c| {
            c.ws_max_sockets_per_user = 0
        }),
        ("CONFAB_REQUEST_TIMEOUT", |c| {
            c.request_timeout = Duration::ZERO
        }),
        ("CONFAB_SHUTDOWN_GRACE", |c| {
            c.shutdown_grace = Duration::ZERO
        }),
    ];
    for (variable, customize) in cases {
        let (_dir, config) = config_with(customize);
        let error = build_error(config).await;
        assert!(error.starts_with(variable), "expected {variable}: {error}");
    }
}

#[tokio::test]
async fn generated_secret_survives_restart() {
    let app = spawn_app_with(|config| config.jwt_secret = None).await;
    let (_, token) = app.user("restart@example.test").await;
    let secret_path = app.config.storage.data_dir.join("jwt-secret");

    let metadata = std::fs::metadata(&secret_path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(metadata.len(), 32);
    let secret = std::fs::read(&secret_path).unwrap();

    let restarted = app.restart().await;
    assert_eq!(std::fs::read(&secret_path).unwrap(), secret);
    let me = restarted.get("/auth/me", Some(&token)).await;
    assert_eq!(
        me.status(),
        200,
        "a token issued before the restart is accepted"
    );
    restarted.stop().await;
}

#[test]
fn settings_parse_from_flags() {
    let cli = Cli::parse_from([
        "confab",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--access-token-ttl",
        "15m",
        "--clock-leeway",
        "5s",
        "--revocation-purge-interval",
        "2m",
        "--jwt-issuer",
        "chat.example.test",
    ]);
    let Some(Command::Serve(config)) = cli.command else {
        panic!("expected the serve command");
    };
    assert_eq!(config.addr.port(), 0);
    assert_eq!(config.access_token_ttl, Duration::from_secs(900));
    assert_eq!(config.clock_leeway, Duration::from_secs(5));
    assert_eq!(config.revocation_purge_interval, Duration::from_secs(120));
    assert_eq!(config.jwt_issuer, "chat.example.test");
}

#[test]
fn bad_duration_is_rejected() {
    let error = Cli::try_parse_from(["confab", "--access-token-ttl", "soon"]).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("access-token-ttl"), "{text}");
    assert!(text.contains("30m"), "{text}");
}

#[test]
fn runtime_limits_parse_from_flags() {
    let cli = Cli::parse_from([
        "confab",
        "--ws-max-message-bytes",
        "2048",
        "--ws-max-sockets-per-user",
        "3",
        "--request-timeout",
        "5s",
        "--shutdown-grace",
        "2s",
        "--behind-tls-proxy",
        "true",
    ]);
    let config = cli.serve;
    assert_eq!(config.ws_max_message_bytes, 2048);
    assert_eq!(config.ws_max_sockets_per_user, 3);
    assert_eq!(config.request_timeout, Duration::from_secs(5));
    assert_eq!(config.shutdown_grace, Duration::from_secs(2));
    assert!(config.behind_tls_proxy);
}

#[tokio::test]
async fn second_server_on_data_dir_is_rejected() {
    let data_dir = tempfile::tempdir().unwrap();
    let _first = start(test_config(data_dir.path())).await;

    let error = build_error(test_config(data_dir.path())).await;
    assert!(error.contains("another Confab server"), "{error}");
    let pid = format!("process {}", std::process::id());
    assert!(error.contains(&pid), "{error}");
    let folder = data_dir.path().display().to_string();
    assert!(error.contains(&folder), "{error}");
}

#[tokio::test]
async fn postgres_servers_share_data_dir() {
    let Some(schema) = TestSchema::create().await else {
        eprintln!("skipped: CONFAB_TEST_DATABASE_URL is not set");
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = test_config(data_dir.path());
        config.storage.database_url = Some(schema.url.clone());
        config
    };
    let _first = start(config()).await;
    let second = start(config()).await;
    assert_eq!(second.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn fresh_data_dir_is_private() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let app = start(test_config(&data_dir)).await;
    // A write makes sure SQLite has created its -wal and -shm files.
    app.register("ann@example.test").await;

    let mode = |path: &std::path::Path| {
        let metadata = std::fs::metadata(path).unwrap_or_else(|error| {
            panic!("{}: {error}", path.display());
        });
        metadata.permissions().mode() & 0o777
    };
    assert_eq!(mode(&data_dir), 0o700);
    for name in ["confab.db", "confab.db-wal", "confab.db-shm"] {
        assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
    }
}
