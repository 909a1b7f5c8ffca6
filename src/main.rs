//! The `tidings` binary: parse the command line, set up logging, run the
//! command, and decide the exit code in one place: 0 success, 1 runtime
//! failure, 2 usage or configuration error.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = cli::Cli::parse(); // clap exits with 2 on usage errors itself
    quit_quietly_when_output_closes();
    init_logging(args.verbose, args.log_format);
    tidings::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The command runs as a task on a worker thread: a future that
    // `block_on` drives on this thread is woken through a condvar each time
    // a task it spawned (a message being sent) finishes, a thread switch
    // per message (BENCHMARKS.md, "Send").
    let task = runtime.spawn(cli::run(args));
    let run = match runtime.block_on(task) {
        Ok(run) => run,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => {
            eprintln!("error: the command's task stopped: {e}");
            return ExitCode::from(1);
        }
    };
    match run {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::Failure) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            let usage = e.downcast_ref::<tidings::Error>().is_some_and(tidings::Error::is_usage);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// glibc gives threads up to eight arenas per core, each keeping its
/// high-water mark; tidings' threads hand data on, so one per core costs no
/// speed and saves memory (BENCHMARKS.md). An operator's `MALLOC_ARENA_MAX`
/// or `GLIBC_TUNABLES` still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the one call into libc, below
fn limit_malloc_arenas() {
    let set_by_operator = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if set_by_operator {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets a malloc parameter; it is called before any
    // other thread exists, as its documentation asks. A refusal (0) leaves
    // glibc's default, which is correct too.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// `tidings inspect FEED | head`: when the reader of our output goes away,
/// end quietly with 0, as ripgrep does, instead of panicking about a broken
/// pipe. (Restoring SIGPIPE's default would do it too, but would also let a
/// peer that closes a socket mid-write kill a collect or a send.)
fn quit_quietly_when_output_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The error and its causes, each once: the library's errors already
/// include their cause's text, so a cause the message contains is skipped.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn init_logging(verbose: u8, format: cli::LogFormat) {
    let default = match verbose {
        // The certificate verifier logs each refusal itself; tidings says
        // it once, in words (deliver::transport::tls_problem).
        0 => "warn,tidings=info,rustls_platform_verifier=off",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Json => builder.json().init(),
        cli::LogFormat::Text => builder.with_target(false).init(),
    }
}
