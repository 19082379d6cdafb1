//! `tributary-operator`: reconciles Tenants, Topics and CassandraSinks. Settings come from
//! the environment (see `config.rs`); logs are JSON lines on stdout.

use tracing_subscriber::EnvFilter;

/// The operator's allocator is jemalloc: glibc's malloc kept freed memory in fragments after
/// each burst of reconciles (at 500 tenants its arenas held 80 MB for 40 MB in use, and
/// `malloc_trim` gave 25 MB back), and the peak RSS grew with every burst. jemalloc returns
/// freed pages to the system after `dirty_decay_ms`, from its own background thread.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// The operator's only `unsafe` code is here: the allocators' settings, which neither jemalloc
// nor glibc offers through a safe API (an exported symbol read before `main`, and mallopt).

/// jemalloc's settings, read before `main`: two arenas (the operator waits on the network;
/// more arenas only spread its memory), freed pages purged after one second.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Option<&std::ffi::c_char> =
    // SAFETY: a pointer to a NUL-terminated literal that lives as long as the program.
    Some(unsafe { &*c"narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr() });

fn main() {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the tokio runtime")
        .block_on(operate());
}

/// What still allocates through glibc (OpenSSL) gets two arenas, not up to 8
/// per core: memory freed in one arena is not reused by another. Set before any thread
/// starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn operate() {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn")))
        .init();
    if let Err(e) = tributary::operator::run().await {
        tracing::error!(error = %e, "operator stopped");
        eprintln!("tributary-operator: {e}");
        std::process::exit(1);
    }
}
