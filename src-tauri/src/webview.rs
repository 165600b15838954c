//! WebKit settings for the one window.
//!
//! - fleetdash shows a single page that never navigates, so WebKit's browser-sized memory
//!   caches (back/forward page cache, large resource caches) only cost memory: the "document
//!   viewer" cache model turns them off.
//! - Without a GPU (no DRM render node: VMs, remote desktops, Xvfb) WebKit's accelerated
//!   compositing runs on Mesa's software rasteriser and costs ~150 MiB more in the web process
//!   for no gain: the map draws into 2D canvases. The hardware acceleration policy is then
//!   "never". With a GPU WebKit keeps its default.

use tauri::{AppHandle, Manager};
use tracing::{debug, info};

/// Applies the settings to the main window's webview.
pub fn tune(app: &AppHandle) {
    let Some(w) = app.get_webview_window("main") else {
        return;
    };
    let gpu = has_gpu();
    if !gpu {
        info!("no GPU render node: WebKit compositing off (software rendering)");
    }
    let r = w.with_webview(move |wv| {
        #[cfg(target_os = "linux")]
        {
            use webkit2gtk::{
                CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt,
            };
            if let Some(ctx) = wv.inner().context() {
                ctx.set_cache_model(CacheModel::DocumentViewer);
            }
            if !gpu && let Some(settings) = WebViewExt::settings(&wv.inner()) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (wv, gpu);
    });
    if let Err(e) = r {
        debug!(error = %e, "webview settings");
    }
}

/// Whether a GPU is usable for rendering: a DRM render node exists (`/dev/dri/renderD*`).
/// Other platforms are assumed to have one.
fn has_gpu() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}
