//! The `prefer-gateway` binary: parses the command line, sets up logging, and hands over to
//! the library. Exit codes: 0 success, 1 runtime failure (e.g. the port is taken), 2 bad
//! configuration or usage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[path = "main/tidy.rs"]
mod tidy;

/// See Cargo.toml: cheaper per-request allocations than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use prefer_gateway::{config, demo, signal, Running};

/// An API gateway that turns the HTTP `Prefer` header into sync or async answers.
#[derive(Parser)]
#[command(name = "prefer-gateway", version, about)]
struct Cli {
    /// Log line format (filter with RUST_LOG, e.g. `RUST_LOG=prefer_gateway=debug`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "PREFER_GATEWAY_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a config file.
    Run {
        /// Path of the TOML config.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and print its route table (exit 0 valid, 2 invalid).
    Check {
        /// Path of the TOML config.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Start demo upstreams and a gateway in front of them; print curl lines to try.
    Demo {
        /// Gateway listen address (`127.0.0.1:0` picks a free port; the container image
        /// sets `0.0.0.0:8080`).
        #[arg(
            long,
            default_value = "127.0.0.1:8080",
            env = "PREFER_GATEWAY_DEMO_LISTEN"
        )]
        listen: SocketAddr,
        /// The URL clients reach the gateway by, when not the listen address (e.g. the
        /// host port `docker run -p 9000:8080` publishes: `http://localhost:9000`); the
        /// printed curl lines and the URLs the gateway hands out name it.
        #[arg(long, env = "PREFER_GATEWAY_PUBLIC_URL")]
        public_url: Option<String>,
        /// Also serve the admin endpoints (`/readyz` for `health`, `/metrics`) here; off
        /// unless given (the container image sets `0.0.0.0:9901`).
        #[arg(long, env = "PREFER_GATEWAY_DEMO_ADMIN_LISTEN")]
        admin_listen: Option<SocketAddr>,
    },
    /// Ask a running gateway's admin listener whether it is ready (`GET /readyz`): exit 0
    /// on `200`, 1 otherwise — a container health check that needs nothing but this binary.
    Health {
        /// The admin listener's address.
        #[arg(
            long,
            default_value = "127.0.0.1:9901",
            env = "PREFER_GATEWAY_HEALTH_ADDR"
        )]
        admin: SocketAddr,
    },
    /// Run only the demo upstreams (task API and sync API), e.g. for docker/compose.yml.
    DemoUpstreams {
        /// Task API address.
        #[arg(long, default_value = "127.0.0.1:9000")]
        tasks: SocketAddr,
        /// Sync API address.
        #[arg(long, default_value = "127.0.0.1:9001")]
        sync: SocketAddr,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal; files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`), first
/// thing in `main`, before the gateway allocates anything of size.
///
/// Why: mimalloc reserves its arena in 2 MiB-aligned regions and advises them
/// `MADV_HUGEPAGE`. With THP at `always` or `madvise` (the common distribution defaults),
/// khugepaged then collapses any such region that holds even one touched 4 KiB page into a
/// whole 2 MiB page (`max_ptes_none` is 511 by default). RSS steps up by megabytes, minutes
/// apart, at 0 CPU and with nothing allocated. The soak (issue 18) saw `AnonHugePages` go
/// from 8 to 18 MiB and RSS up 4 MiB at minute 12; after a burst of waiters an idle gateway
/// grew 3–9 MiB per 10 s. A gateway's heap is tens of MiB of small, short-lived objects,
/// where huge pages save little TLB work; Redis and MongoDB ask for THP off for the same
/// reason. The flag covers the whole process (its memory map), and children inherit it.
/// Off Linux, or on a kernel without the flag, the system default stays.
fn no_huge_pages() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    return rustix::thread::disable_transparent_huge_pages(true).map_err(|e| e.to_string());
    #[cfg(not(target_os = "linux"))]
    return Err("not Linux".to_owned());
}

fn main() -> ExitCode {
    let thp = no_huge_pages();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match thp {
        Ok(()) => tracing::debug!("transparent huge pages off for this process"),
        Err(e) => tracing::debug!(error = %e, "transparent huge pages left at the system default"),
    }
    match &cli.command {
        Command::Check { config } => return check(config),
        Command::Health { admin } => return health(*admin),
        _ => {}
    }
    if let Err(e) = tidy::start_janitor() {
        tracing::debug!(error = %e, "memory janitor not started");
    }
    // The per-core connection runtimes tidy their heaps at park too.
    prefer_gateway::server::cores::on_park(tidy::on_park);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(tidy::on_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("prefer-gateway: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run { config } => run(&config).await,
            Command::Demo {
                listen,
                public_url,
                admin_listen,
            } => match demo::run(
                demo::Listen {
                    gateway: listen,
                    public_url,
                    admin: admin_listen,
                },
                signal::shutdown(),
            )
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("prefer-gateway demo: {e}");
                    ExitCode::from(1)
                }
            },
            Command::DemoUpstreams { tasks, sync } => {
                match demo::start_upstreams_on(tasks, sync).await {
                    Ok(ups) => {
                        tracing::info!(tasks = %ups.tasks, sync = %ups.sync, "demo upstreams listening");
                        signal::shutdown().await;
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("prefer-gateway demo-upstreams: {e}");
                        ExitCode::from(1)
                    }
                }
            }
            Command::Check { .. } | Command::Health { .. } => ExitCode::SUCCESS,
        }
    })
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load_file(path) {
        Ok(cfg) => {
            println!("{} is valid.\n", path.display());
            print!("{}", config::table::route_table(&cfg));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `health`: one `GET /readyz` over a plain socket, bounded by 3 s in all.
fn health(admin: SocketAddr) -> ExitCode {
    use std::io::{Read as _, Write as _};
    let limit = std::time::Duration::from_secs(3);
    let answer = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&admin, limit)?;
        s.set_read_timeout(Some(limit))?;
        s.set_write_timeout(Some(limit))?;
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    })();
    match answer {
        Ok(head) if head.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(head) => {
            let line = head.lines().next().unwrap_or_default();
            eprintln!("prefer-gateway health: {admin}/readyz answered {line:?}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("prefer-gateway health: {admin}/readyz: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(path: &std::path::Path) -> ExitCode {
    let cfg = match config::load_file(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let bound = Running::bind(&cfg).await;
    let running = match bound.and_then(|r| r.reload_on_sighup(path.to_owned(), &cfg)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("prefer-gateway: {e}");
            return ExitCode::from(1);
        }
    };
    match running.local_addr() {
        Ok(addr) => {
            let tls = cfg.server.tls.is_some();
            tracing::info!(%addr, routes = cfg.routes.len(), tls, "listening")
        }
        Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
    }
    if let Some(addr) = running.admin_addr() {
        tracing::info!(%addr, "admin listening (/healthz, /readyz)");
    }
    running.serve(signal::shutdown()).await;
    ExitCode::SUCCESS
}
