//! A private Dovecot (Debian's `dovecot-imapd`) for one test: its own
//! configuration, state, log and Maildirs in a temporary folder, IMAP on a
//! loopback port, any user with one password. Needs root (Dovecot's master
//! runs as root and drops to its own users) and the package; without them
//! the test is skipped, unless `TIDINGS_REQUIRE_DOVECOT` is set (CI).

use std::path::PathBuf;
use std::process::Command;

pub const PASSWORD: &str = "bounce-secret";

pub struct Dovecot {
    dir: PathBuf,
    pub port: u16,
}

impl Dovecot {
    pub fn start() -> Option<Dovecot> {
        let required = std::env::var_os("TIDINGS_REQUIRE_DOVECOT").is_some();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let installed = std::path::Path::new("/usr/sbin/dovecot").exists();
        if !(root && installed) {
            assert!(
                !required,
                "TIDINGS_REQUIRE_DOVECOT is set but Dovecot cannot run (root: {root}, installed: {installed})"
            );
            eprintln!("skipped: Dovecot needs root and Debian's dovecot-imapd package");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "tidings-dovecot-{}",
            tidings::app::random_hex(6).expect("random")
        ));
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).expect("dovecot folders");
        }
        for (args, what) in [
            (
                vec!["mail:mail".to_string(), dir.join("mail").display().to_string()],
                "chown",
            ),
            (vec!["755".to_string(), dir.display().to_string()], "chmod"),
        ] {
            assert!(Command::new(what).args(&args).status().expect(what).success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let d = dir.display();
        std::fs::write(
            dir.join("dovecot.conf"),
            format!(
                "base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
default_internal_user = dovecot
default_login_user = dovenull
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"
            ),
        )
        .expect("dovecot.conf");
        // The master goes to the background: its output must not be a pipe
        // the test waits on.
        let started = Command::new("dovecot")
            .args(["-c", &dir.join("dovecot.conf").display().to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run dovecot");
        let dovecot = Dovecot { dir, port };
        assert!(started.success(), "dovecot did not start:\n{}", dovecot.log());
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(dovecot);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("dovecot does not listen on {port}:\n{}", dovecot.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("run/master.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
