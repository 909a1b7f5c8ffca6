//! Start-up checks of what the configuration points at: the templates
//! folder and every edition's templates (syntax errors with file and
//! line), subject templates, and the DKIM key. They need files and other
//! stages, so they run here, after `config` has parsed and validated the
//! TOML on its own, and report the same way: every problem with its key.

use crate::config::{Config, ConfigError};

/// Every problem with the files the configuration names, at once.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let mut bad = |key: &str, msg: String| problems.push(format!("{key}: {msg}"));
    let dir = &config.site.templates_dir;
    if !dir.is_dir() {
        bad("site.templates", format!("folder {} does not exist", dir.display()));
    } else {
        for (i, edition) in config.editions.iter().enumerate() {
            for ext in ["html.j2", "txt.j2"] {
                let file = dir.join(format!("{}.{ext}", edition.template));
                if !file.is_file() {
                    bad(
                        &format!("editions[{i}].template"),
                        format!("{} does not exist", file.display()),
                    );
                }
            }
        }
        // Syntax errors are configuration errors: found now, with the file
        // and line, not halfway through a send.
        if let Err(e) = crate::render::Renderer::load(dir) {
            bad("site.templates", e.to_string());
        }
    }
    for (i, edition) in config.editions.iter().enumerate() {
        if let Some(subject) = &edition.subject
            && let Err(err) = crate::render::check_subject_template(subject)
        {
            bad(&format!("editions[{i}].subject"), err);
        }
    }
    if let Some(dkim) = &config.delivery.dkim {
        let file = &dkim.private_key_file;
        if !file.is_file() {
            bad(
                "dkim.private_key_file",
                format!("file {} does not exist", file.display()),
            );
        } else if let Err(e) = crate::deliver::dkim::check(file) {
            bad("dkim.private_key_file", format!("{}: {e}", file.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError {
            path: config.path.clone(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::config::Config;

    const CONFIG: &str = r#"
[site]
title = "Weekly"
base_url = "https://news.example.com"
from = "Weekly <recap@example.com>"

[dkim]
domain = "example.com"
selector = "s1"
private_key_file = "keys/missing.pem"

[[sources]]
name = "Local"
url = "feeds/local.xml"

[audiences.all]
title = "Everyone"
weights = { news = 1.0 }

[[editions]]
name = "weekly"
title = "Weekly"
audience = "all"
schedule = "0 0 8 * * Mon"
template = "weekly"
subject = "{{ edition.title"
"#;

    #[test]
    fn every_problem_with_the_named_files_is_reported_with_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, CONFIG).expect("write");
        let config = Config::load(&path, &|_| None).expect("the TOML itself is valid");
        let text = check(&config).expect_err("problems").to_string();
        for key in [
            "site.templates: folder",
            "editions[0].subject",
            "dkim.private_key_file: file",
        ] {
            assert!(text.contains(key), "{key} in {text}");
        }
        // With the folder but a broken template and no txt part.
        std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
        std::fs::write(dir.path().join("templates/weekly.html.j2"), "{% if %}").expect("write");
        let text = check(&config).expect_err("problems").to_string();
        assert!(
            text.contains("editions[0].template") && text.contains("weekly.txt.j2 does not exist"),
            "{text}"
        );
        assert!(
            text.contains("site.templates") && text.contains("weekly.html.j2"),
            "{text}"
        );
    }
}
