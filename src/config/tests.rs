//! The configuration's checks, tried on small files.

mod checks {
    use super::super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn dir_with_templates() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
        for f in ["weekly.html.j2", "weekly.txt.j2"] {
            std::fs::write(dir.path().join("templates").join(f), "x").expect("write");
        }
        dir
    }

    const GOOD: &str = r#"
[site]
title = "Weekly AI Recap"
base_url = "http://127.0.0.1:8080/"
from = "Weekly AI Recap <recap@example.com>"

[smtp]
url = "smtp://user:p%40ss@127.0.0.1:2525"
starttls = "required"

[[sources]]
name = "Local"
url = "feeds/local.xml"
tags = ["Enterprise"]

[tags.security]
keywords = ["Ransomware", "zero-day"]

[audiences.security]
title = "Enterprise & Security Teams"
weights = { security = 3.0, cloud = 2.0 }

[[editions]]
name = "weekly"
title = "Weekly AI Recap"
audience = "security"
schedule = "0 0 8 * * Mon"
timezone = "Europe/Berlin"
template = "weekly"
"#;

    #[test]
    fn good_config_resolves_paths_and_defaults() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let cfg = Config::parse(GOOD, &path, &no_env).expect("valid");
        assert_eq!(cfg.site.base_url, "http://127.0.0.1:8080");
        assert_eq!(cfg.database, DatabaseUrl::Sqlite(dir.path().join("tidings.db")));
        assert_eq!(cfg.mailbox_dir, dir.path().join("outbox"));
        assert_eq!(
            cfg.sources[0].location,
            SourceLocation::File(dir.path().join("feeds/local.xml"))
        );
        assert_eq!(cfg.sources[0].tags, vec!["enterprise"]);
        let smtp = cfg.smtp.expect("smtp");
        assert_eq!(smtp.username.as_deref(), Some("user"));
        assert_eq!(smtp.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(smtp.port, 2525);
        assert_eq!(smtp.starttls, StartTls::Required);
        assert_eq!(cfg.tag_rules[0].keywords, vec!["ransomware", "zero-day"]);
        assert_eq!(cfg.editions[0].window_days, 7);
        assert_eq!(cfg.editions[0].min_stories, 1);
        assert_eq!(cfg.site.unsubscribe_mailto, None);
    }

    #[test]
    fn env_overrides_win_and_secrets_never_print() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let env = |k: &str| match k {
            ENV_DATABASE_URL => Some("postgres://u:hunter2hunter2@db/x".to_string()),
            ENV_SMTP_URL => Some("smtps://a:topsecretpw@mail.example.com".to_string()),
            ENV_SECRET => Some("0123456789abcdef0123456789abcdef".to_string()),
            _ => None,
        };
        let cfg = Config::parse(GOOD, &path, &env).expect("valid");
        let smtp = cfg.smtp.as_ref().expect("smtp");
        assert!(smtp.implicit_tls);
        assert_eq!(smtp.port, 465);
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("topsecretpw"), "{debug}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert_eq!(cfg.database.to_string(), "postgres://u:***@db/x");
    }

    #[test]
    fn briefing_is_optional_and_its_key_comes_from_the_environment() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        assert!(Config::parse(GOOD, &path, &no_env).expect("valid").briefing.is_none());
        let text = format!(
            "{GOOD}\n[briefing]\nendpoint = \"http://127.0.0.1:8081/v1\"\nmodel = \"m\"\napi_key_env = \"TIDINGS_BRIEFING_KEY\"\n"
        );
        let env = |k: &str| (k == "TIDINGS_BRIEFING_KEY").then(|| "sk-test-key".to_string());
        let b = Config::parse(&text, &path, &env)
            .expect("valid")
            .briefing
            .expect("briefing");
        assert_eq!(b.endpoint.as_str(), "http://127.0.0.1:8081/v1");
        assert_eq!(b.api_key.as_ref().map(Secret::expose), Some("sk-test-key"));
        assert_eq!(
            (b.concurrency, b.max_input_chars, b.max_stories_per_run),
            (2, 6000, 200)
        );
        assert_eq!(b.unverified, UnverifiedPolicy::Fallback);
        assert_eq!(b.timeline_days, 90);
        assert!(!format!("{b:?}").contains("sk-test-key"), "the key is never printed");
        // The variable it names is not set: an error naming both.
        let msg = Config::parse(&text, &path, &no_env).expect_err("unset").to_string();
        assert!(
            msg.contains("briefing.api_key_env: the environment variable TIDINGS_BRIEFING_KEY is not set"),
            "{msg}"
        );
    }

    #[test]
    fn briefing_problems_name_their_keys() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let text = format!(
            "{GOOD}\n[briefing]\nendpoint = \"ftp://models\"\nmodel = \"\"\napi_key_env = \"sk-live-123 456\"\n\
             concurrency = 0\ntimeout = \"soon\"\nunverified = \"ignore\"\nmax_input_chars = 10\n"
        );
        let msg = Config::parse(&text, &path, &no_env).expect_err("invalid").to_string();
        for key in [
            "briefing.endpoint",
            "briefing.model",
            "briefing.api_key_env: must be the name of an environment variable",
            "briefing.concurrency",
            "briefing.timeout",
            "briefing.unverified: \"ignore\"",
            "briefing.max_input_chars",
        ] {
            assert!(msg.contains(key), "{key} in {msg}");
        }
        assert!(
            !msg.contains("sk-live"),
            "a key written in the file is not echoed: {msg}"
        );
        let unknown = format!("{GOOD}\n[briefing]\nendpoint = \"http://x/v1\"\nmodel = \"m\"\napi_key = \"k\"\n");
        let msg = Config::parse(&unknown, &path, &no_env)
            .expect_err("unknown key")
            .to_string();
        assert!(msg.contains("api_key"), "{msg}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let text = GOOD
            .replace("Europe/Berlin", "Mars/Olympus")
            .replace("audience = \"security\"", "audience = \"nobody\"")
            .replace("0 0 8 * * Mon", "0 8 * * Mon")
            .replace("recap@example.com>", "not an address>");
        let err = Config::parse(&text, &path, &no_env).expect_err("invalid");
        let msg = err.to_string();
        assert!(msg.contains("editions[0].timezone"), "{msg}");
        assert!(msg.contains("editions[0].audience"), "{msg}");
        assert!(msg.contains("editions[0].schedule"), "{msg}");
        assert!(msg.contains("site.from"), "{msg}");
        assert!(msg.contains("tidings.toml"), "{msg}");
    }

    #[test]
    fn dkim_canonicalization_defaults_to_relaxed_simple_and_is_checked() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim/ed25519.pem");
        let with = |setting: &str| {
            format!(
                "{GOOD}\n[dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nprivate_key_file = \"{key}\"\n{setting}"
            )
        };
        let body = |text: &str| {
            Config::parse(text, &path, &no_env)
                .expect("valid")
                .delivery
                .dkim
                .expect("dkim")
                .body_canonicalization
        };
        assert_eq!(body(&with("")), BodyCanonicalization::Simple);
        assert_eq!(
            body(&with("canonicalization = \"relaxed/relaxed\"\n")),
            BodyCanonicalization::Relaxed
        );
        let err = Config::parse(&with("canonicalization = \"simple/simple\"\n"), &path, &no_env).expect_err("invalid");
        assert!(err.to_string().contains("dkim.canonicalization"), "{err}");
    }

    #[test]
    fn curation_keys_are_read_and_checked() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let good = format!(
            "{GOOD}max_per_source = 2\n\n[[editions.sections]]\ntitle = \"Security\"\ntags = [\"Security\"]\nmax = 3\n\n\
             [[editions.sections]]\ntitle = \"Everything else\"\n"
        )
        .replace(
            "weights = { security = 3.0, cloud = 2.0 }",
            "weights = { security = 3.0, cloud = 2.0 }\nsource_weights = { Local = 0.5 }\nexclude_tags = [\"Sponsored\"]\n\
             half_life = \"36h\"\nthreshold = 1.5\ncluster_bonus = 0.1\ncluster_bonus_max = 0.3",
        );
        let cfg = Config::parse(&good, &path, &no_env).expect("valid");
        let a = &cfg.audiences["security"];
        assert_eq!(a.source_weights.get("Local"), Some(&0.5));
        assert!(a.exclude_tags.contains("sponsored"));
        assert_eq!(a.half_life, Some(chrono::Duration::hours(36)));
        assert_eq!((a.threshold, a.cluster_bonus, a.cluster_bonus_max), (1.5, 0.1, 0.3));
        let e = &cfg.editions[0];
        assert_eq!(e.max_per_source, 2);
        assert_eq!(e.sections.len(), 2);
        assert_eq!(e.sections[0].tags, ["security"]);
        assert!(e.sections[1].tags.is_empty());

        // Defaults.
        let cfg = Config::parse(GOOD, &path, &no_env).expect("valid");
        assert_eq!(cfg.editions[0].max_per_source, DEFAULT_MAX_PER_SOURCE);
        assert!(cfg.editions[0].sections.is_empty());
        assert_eq!(cfg.audiences["security"].threshold, DEFAULT_THRESHOLD);

        let bad = good
            .replace("Local = 0.5", "Nowhere = 0.5")
            .replace("half_life = \"36h\"", "half_life = \"soon\"")
            .replace("threshold = 1.5", "threshold = -1")
            .replace("max_per_source = 2", "max_per_source = 0")
            .replace(
                "title = \"Everything else\"",
                "title = \"Again\"\ntags = [\"security\"]",
            );
        let msg = Config::parse(&bad, &path, &no_env).expect_err("invalid").to_string();
        for key in [
            "audiences.security.source_weights.Nowhere",
            "audiences.security.half_life",
            "audiences.security.threshold",
            "editions[0].max_per_source",
            "editions[0].sections[1].tags",
        ] {
            assert!(msg.contains(key), "{key} not named: {msg}");
        }
    }

    #[test]
    fn short_secret_and_unknown_keys_are_refused() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let env = |k: &str| (k == ENV_SECRET).then(|| "short".to_string());
        let err = Config::parse(GOOD, &path, &env).expect_err("short secret");
        assert!(err.to_string().contains("TIDINGS_SECRET"));
        assert!(!err.to_string().contains("short\""));

        let text = GOOD.replace("[smtp]", "[smtp]\nport = 25");
        let err = Config::parse(&text, &path, &no_env).expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `port`"), "{err}");
    }

    #[test]
    fn smtp_url_errors_do_not_echo_the_password() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let text = GOOD.replace("smtp://user:p%40ss@", "imap://user:sekritpass@");
        let err = Config::parse(&text, &path, &no_env).expect_err("bad scheme");
        let msg = err.to_string();
        assert!(msg.contains("smtp.url"), "{msg}");
        assert!(!msg.contains("sekritpass"), "{msg}");
    }
}

mod path_tests {
    use super::super::validate::resolve;
    use std::path::{Path, PathBuf};

    #[test]
    fn configured_paths_are_shown_normalised() {
        let base = Path::new("/srv/news/config");
        assert_eq!(resolve(base, "../tidings.db"), PathBuf::from("/srv/news/tidings.db"));
        assert_eq!(
            resolve(base, "./templates/"),
            PathBuf::from("/srv/news/config/templates")
        );
        assert_eq!(resolve(base, "/var/../etc/x"), PathBuf::from("/etc/x"));
        assert_eq!(
            resolve(Path::new("config"), "../../data/t.db"),
            PathBuf::from("../data/t.db")
        );
        assert_eq!(resolve(Path::new(""), "outbox"), PathBuf::from("outbox"));
    }
}

mod token_strength_tests {
    use super::super::validate::guessable;

    #[test]
    fn editor_tokens_that_are_easy_to_guess_are_refused() {
        for weak in [
            "aaaaaaaaaaaaaaaa",
            "                ",
            "abababababababab",
            "0123456789abcdef",
            " padded-token-0123456789 ",
        ] {
            assert!(guessable(weak), "{weak:?} should be refused");
        }
        for strong in [
            "editor-token-0123456789",
            "3f9c2a7d41e08b56c9d2e71f4a3b8c60",
            "correct horse battery staple",
        ] {
            assert!(!guessable(strong), "{strong:?} should be accepted");
        }
    }
}
