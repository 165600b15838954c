//! WebKit settings for the one window. fleetdash shows a single page that never navigates,
//! so WebKit's browser-sized memory caches (back/forward page cache, large resource caches)
//! only cost memory: the "document viewer" cache model turns them off.

use tauri::{AppHandle, Manager};
use tracing::debug;

/// Applies the settings to the main window's webview.
pub fn tune(app: &AppHandle) {
    let Some(w) = app.get_webview_window("main") else {
        return;
    };
    let r = w.with_webview(|wv| {
        #[cfg(target_os = "linux")]
        {
            use webkit2gtk::{CacheModel, WebContextExt, WebViewExt};
            if let Some(ctx) = wv.inner().context() {
                ctx.set_cache_model(CacheModel::DocumentViewer);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = wv;
    });
    if let Err(e) = r {
        debug!(error = %e, "webview settings");
    }
}
