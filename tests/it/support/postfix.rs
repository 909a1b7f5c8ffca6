//! A private Postfix (Debian's package) for one test: its own
//! configuration, queue and log in a temporary folder, SMTP on a loopback
//! port, local delivery for one domain (where no user exists, so every
//! message bounces after Postfix said 250), and one other domain routed
//! over LMTP to a given port — the return path's, so the bounce comes back
//! to tidings' listener. Needs root (Postfix's master runs as root and
//! drops to its `postfix` user) and the `postfix` package; without them
//! the test is skipped, unless `TIDINGS_REQUIRE_POSTFIX` is set (CI).

use std::path::PathBuf;
use std::process::Command;

pub struct Postfix {
    dir: PathBuf,
    pub port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs a Postfix command; it logs to syslog unless it has a terminal, so
/// `script` gives it one and its errors reach the test's output.
fn postfix(config: &std::path::Path, verb: &str) -> std::process::Output {
    Command::new("script")
        .args(["-qec", &format!("postfix -c {} {verb}", config.display()), "/dev/null"])
        .output()
        .expect("run postfix")
}

impl Postfix {
    /// `None` when Postfix cannot run here (and it is not required).
    pub fn start(local_domain: &str, lmtp_domain: &str, lmtp_port: u16) -> Option<Postfix> {
        let required = std::env::var_os("TIDINGS_REQUIRE_POSTFIX").is_some();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let installed = std::path::Path::new("/usr/sbin/postfix").exists();
        if !(root && installed) {
            assert!(
                !required,
                "TIDINGS_REQUIRE_POSTFIX is set but Postfix cannot run (root: {root}, installed: {installed})"
            );
            eprintln!("skipped: Postfix needs root and Debian's postfix package");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "tidings-postfix-{}",
            tidings::app::random_hex(6).expect("random")
        ));
        let config = dir.join("etc");
        for sub in ["etc", "spool", "data"] {
            std::fs::create_dir_all(dir.join(sub)).expect("postfix folders");
        }
        // Postfix's own user must reach its queue and data folders.
        let status = Command::new("chown")
            .args(["postfix", &dir.join("data").display().to_string()])
            .status()
            .expect("chown");
        assert!(status.success());
        let status = Command::new("chmod")
            .args(["755", &dir.display().to_string()])
            .status()
            .expect("chmod");
        assert!(status.success());
        let port = free_port();
        std::fs::write(
            config.join("master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"
            ),
        )
        .expect("master.cf");
        let d = dir.display();
        std::fs::write(
            config.join("main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
maillog_file_prefixes = {d}
maillog_file = {d}/postfix.log
myhostname = mx.{local_domain}
mydomain = {local_domain}
myorigin = {local_domain}
mydestination = {local_domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
# Every local address is taken at SMTP time and bounced by local delivery:
# the bounce arrives after the 250, as it does behind any relay.
local_recipient_maps =
alias_maps =
alias_database =
transport_maps = inline:{{ {lmtp_domain}=lmtp:inet:127.0.0.1:{lmtp_port} }}
biff = no
smtputf8_enable = no
"
            ),
        )
        .expect("main.cf");
        let started = postfix(&config, "start");
        let postfix = Postfix { dir, port };
        assert!(
            started.status.success(),
            "postfix start: {}\n{}",
            String::from_utf8_lossy(&started.stdout),
            postfix.log()
        );
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(postfix);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("postfix does not listen on {port}:\n{}", postfix.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postfix.log")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = postfix(&self.dir.join("etc"), "abort");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
