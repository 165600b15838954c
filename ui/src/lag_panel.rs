//! `lag-panel` (opened from the Lag counter): per topic and partition, the cache's committed
//! offset, the broker's high watermark, lag, messages/s and how long ago it last moved; a
//! partition stuck behind the broker is marked (and has a `consumer_stuck` alert).

use crate::app::Ui;
use crate::format;
use fleet_model::PartitionLag;
use leptos::prelude::*;

/// The panel, fed by every frame's counters.
#[component]
pub fn LagPanel(open: RwSignal<bool>) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let rows = Memo::new(move |_| {
        ui.frame.with(|f| {
            f.as_ref()
                .map(|f| (f.ts_ms, f.counters.partitions.clone()))
                .unwrap_or_default()
        })
    });
    let offset =
        |o: Option<i64>| o.map_or_else(|| "—".to_string(), |o| format::thousands(o.max(0) as u64));
    view! {
        <div class="lag-pop" data-testid="lag-panel">
            <div class="modal-head"><h3>"Consumer lag"</h3>
                <button class="icon-btn" on:click=move |_| open.set(false)>"✕"</button></div>
            <Show when=move || rows.with(|(_, r)| r.is_empty())>
                <div class="empty">"No Kafka partitions assigned."</div>
            </Show>
            <table>
                <thead><tr>
                    <th>"Topic"</th><th>"Part."</th><th>"Committed"</th><th>"High watermark"</th>
                    <th>"Lag"</th><th>"Msg/s"</th><th>"Last moved"</th>
                </tr></thead>
                <tbody>
                    <For each=move || { let (now, r) = rows.get(); r.into_iter().map(move |p| (now, p)).collect::<Vec<_>>() }
                        key=|(now, p): &(i64, PartitionLag)| (p.topic.clone(), p.partition, p.committed, p.high_watermark, p.stuck, *now / 1000)
                        let:row>
                        {
                            let (now, p) = row;
                            view! {
                                <tr class:stuck=p.stuck data-testid="lag-row" data-topic=p.topic.clone()
                                    data-partition=p.partition data-lag=p.lag.unwrap_or(-1)
                                    data-committed=p.committed.unwrap_or(-1) data-high=p.high_watermark.unwrap_or(-1)>
                                    <td>{p.topic.clone()}</td>
                                    <td>{p.partition}</td>
                                    <td>{offset(p.committed)}</td>
                                    <td>{offset(p.high_watermark)}</td>
                                    <td class:warn=p.lag.is_some_and(|l| l > 0)>{offset(p.lag)}</td>
                                    <td>{format::rate(p.rate)}</td>
                                    <td>{p.last_message_ms.map_or_else(|| "—".to_string(), |m| format::age(now - m))}
                                        {p.stuck.then_some(" · stuck")}</td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
        </div>
    }
}
