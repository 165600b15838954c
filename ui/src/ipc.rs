//! The Tauri bridge: `invoke` for requests, one `Channel` for the frame stream. Uses the
//! global `__TAURI__` object Tauri injects (`withGlobalTauri`), so no JS bundler is needed.

use fleet_model::{Frame, IpcError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    /// Tauri's `Channel` class: serialises itself into a callback id the shell writes to.
    #[wasm_bindgen(js_namespace = ["__TAURI__", "core"], js_name = Channel)]
    pub type TauriChannel;

    #[wasm_bindgen(constructor, js_namespace = ["__TAURI__", "core"], js_class = "Channel")]
    fn new() -> TauriChannel;

    #[wasm_bindgen(method, setter)]
    fn set_onmessage(this: &TauriChannel, f: &Closure<dyn FnMut(JsValue)>);
}

/// Whether the page runs inside the app (and not in a plain browser during development).
pub fn in_tauri() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"__TAURI__".into()).is_ok_and(|v| !v.is_undefined())
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    // JSON-compatible: maps become plain objects, as Tauri's deserializer expects.
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or(JsValue::NULL)
}

fn js_error(e: JsValue) -> IpcError {
    serde_wasm_bindgen::from_value::<IpcError>(e.clone()).unwrap_or_else(|_| IpcError {
        code: "ipc".into(),
        message: e.as_string().unwrap_or_else(|| format!("{e:?}")),
    })
}

/// Calls a command; `args` is an object whose keys are the command's (camelCase) parameters.
pub async fn invoke<A: Serialize, R: DeserializeOwned>(cmd: &str, args: &A) -> Result<R, IpcError> {
    if !in_tauri() {
        return Err(IpcError {
            code: "no_shell".into(),
            message: "not running inside fleetdash".into(),
        });
    }
    let v = tauri_invoke(cmd, to_js(args)).await.map_err(js_error)?;
    serde_wasm_bindgen::from_value(v).map_err(|e| IpcError {
        code: "decode".into(),
        message: e.to_string(),
    })
}

/// Fire-and-forget variant for requests whose reply does not matter (viewport, selection).
pub fn send<A: Serialize + 'static>(cmd: &'static str, args: A) {
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = invoke::<A, ()>(cmd, &args).await {
            web_sys::console::warn_1(&format!("{cmd}: {}", e.message).into());
        }
    });
}

/// A frame arrives as JSON bytes (an `ArrayBuffer`), parsed here with serde_json: much
/// cheaper than walking a parsed JS object graph of thousands of vehicles.
fn decode_frame(msg: JsValue) -> Result<Frame, String> {
    if msg.is_instance_of::<js_sys::ArrayBuffer>() {
        let bytes = js_sys::Uint8Array::new(&msg).to_vec();
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    } else {
        serde_wasm_bindgen::from_value(msg).map_err(|e| e.to_string())
    }
}

/// Subscribes to the frame stream; `on_frame` runs for every frame (≤ 10 Hz).
pub fn subscribe(mut on_frame: impl FnMut(Frame) + 'static) {
    if !in_tauri() {
        return;
    }
    let channel = TauriChannel::new();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |msg: JsValue| match decode_frame(msg) {
        Ok(f) => on_frame(f),
        Err(e) => web_sys::console::error_1(&format!("bad frame: {e}").into()),
    });
    channel.set_onmessage(&cb);
    // The channel lives as long as the page.
    cb.forget();
    let args = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&args, &"onFrame".into(), &channel);
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = tauri_invoke("subscribe", args.into()).await {
            web_sys::console::error_1(&e);
        }
    });
}
