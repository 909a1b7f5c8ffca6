//! A private NSD (Debian's `nsd`, an authoritative DNS server) for one
//! test: its own configuration and zone files in a temporary folder, UDP
//! and TCP on a loopback port, stopped when dropped. Without the package
//! the test is skipped, unless `TIDINGS_REQUIRE_NSD` is set (CI).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Nsd {
    _dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

impl Nsd {
    /// Serves each `(zone name, zone file text)`.
    pub async fn start(zones: &[(&str, String)]) -> Option<Nsd> {
        let required = std::env::var_os("TIDINGS_REQUIRE_NSD").is_some();
        let binary = PathBuf::from("/usr/sbin/nsd");
        if !binary.exists() {
            assert!(
                !required,
                "TIDINGS_REQUIRE_NSD is set but /usr/sbin/nsd is not installed"
            );
            eprintln!("skipped: needs Debian's nsd package");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        // A port free for UDP and TCP at once.
        let port = loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
            let port = udp.local_addr().expect("address").port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let mut conf = format!(
            "server:
  ip-address: 127.0.0.1
  port: {port}
  username: \"\"
  chroot: \"\"
  zonesdir: \"{d}\"
  pidfile: \"{d}/nsd.pid\"
  database: \"\"
  zonelistfile: \"{d}/zone.list\"
  xfrdfile: \"{d}/xfrd.state\"
  xfrdir: \"{d}\"
  logfile: \"{d}/nsd.log\"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
"
        );
        for (name, text) in zones {
            std::fs::write(dir.path().join(format!("{name}.zone")), text).expect("zone file");
            conf.push_str(&format!("zone:\n  name: {name}\n  zonefile: {name}.zone\n"));
        }
        std::fs::write(dir.path().join("nsd.conf"), conf).expect("nsd.conf");
        let child = Command::new(&binary)
            .args(["-d", "-c"])
            .arg(dir.path().join("nsd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsd");
        let nsd = Nsd { _dir: dir, child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(nsd);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(nsd._dir.path().join("nsd.log")).unwrap_or_default();
        panic!("nsd did not start on port {port}:\n{log}");
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
