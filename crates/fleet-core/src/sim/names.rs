//! Vehicle metadata: plates, models, drivers, depots.
//!
//! The lists are small but varied enough that the UI's search, grouping and details panel have
//! something real-looking to show. Plates mix the Korean format (`12가3456`, the simulator's
//! default city is Seoul) with a generic ASCII one (`KR-1234`) so both code paths get exercised.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Model name and whether it is electric (EVs burn no fuel at idle).
const MODELS: &[(&str, bool)] = &[
    ("Hyundai Porter II", false),
    ("Kia Bongo III", false),
    ("Hyundai Ioniq 5", true),
    ("Kia EV6", true),
    ("Kia Niro EV", true),
    ("Hyundai Avante", false),
    ("Hyundai Sonata", false),
    ("Kia K5", false),
    ("Hyundai Staria", false),
    ("Kia Ray", false),
    ("Genesis G80", false),
    ("Toyota Prius", false),
    ("KG Mobility Torres", false),
    ("Renault QM6", false),
];

const SURNAMES: &[&str] = &[
    "Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Oh", "Seo",
    "Shin", "Kwon", "Hwang", "Ahn", "Song", "Yoo", "Hong",
];

const GIVEN: &[&str] = &[
    "Min-jun",
    "Seo-yeon",
    "Ji-ho",
    "Ha-eun",
    "Do-yun",
    "Seo-jun",
    "Ji-woo",
    "Su-bin",
    "Ye-jin",
    "Hyun-woo",
    "Jae-won",
    "Eun-ji",
    "Sung-min",
    "Da-eun",
    "Tae-yang",
    "Yu-na",
    "Dong-hyun",
    "Mi-rae",
];

const DEPOTS: &[&str] = &[
    "Gangnam Depot",
    "Seocho Depot",
    "Songpa Depot",
    "Yongsan Hub",
    "Mapo Hub",
    "Pangyo Logistics",
];

/// Hangul syllables used on Korean plates (commercial and private ranges).
const PLATE_SYLLABLES: &[&str] = &[
    "가", "나", "다", "라", "마", "거", "너", "더", "러", "머", "버", "서", "어", "저", "고", "노",
    "도", "로", "모", "보", "소", "오", "조", "구", "누", "두", "루", "무", "부", "수", "우", "주",
    "아", "바", "사", "자", "하", "허", "호", "배",
];

/// The metadata of one vehicle, serialised as the `info` message.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Info {
    pub plate: String,
    pub model: &'static str,
    pub driver: String,
    pub group: &'static str,
    /// Not in the minimal contract: exercises the decoder's "keep every other field" path.
    pub year: u16,
    #[serde(skip)]
    pub electric: bool,
}

impl Info {
    pub fn random(rng: &mut ChaCha8Rng) -> Self {
        let plate = if rng.random_bool(0.85) {
            format!(
                "{}{}{:04}",
                rng.random_range(10..700),
                PLATE_SYLLABLES.choose(rng).copied().unwrap_or("가"),
                rng.random_range(0..10_000)
            )
        } else {
            format!("KR-{:04}", rng.random_range(0..10_000))
        };
        let &(model, electric) = MODELS.choose(rng).unwrap_or(&MODELS[0]);
        let driver = format!(
            "{} {}",
            SURNAMES.choose(rng).copied().unwrap_or("Kim"),
            GIVEN.choose(rng).copied().unwrap_or("Min-jun")
        );
        Info {
            plate,
            model,
            driver,
            group: DEPOTS.choose(rng).copied().unwrap_or(DEPOTS[0]),
            year: rng.random_range(2016..2026),
            electric,
        }
    }
}

/// An upstream alert rule: name, severity, message. The mix is weighted by repetition:
/// informational and warning alerts are far more common than critical ones.
pub(crate) const UPSTREAM_RULES: &[(&str, &str, &str)] = &[
    (
        "maintenance_due",
        "info",
        "Scheduled maintenance due within 500 km",
    ),
    (
        "maintenance_due",
        "info",
        "Scheduled maintenance due within 500 km",
    ),
    (
        "dtc_code",
        "info",
        "Engine diagnostic trouble code P0420 reported",
    ),
    (
        "tyre_pressure_low",
        "warning",
        "Tyre pressure below 1.8 bar (front left)",
    ),
    (
        "tyre_pressure_low",
        "warning",
        "Tyre pressure below 1.8 bar (rear right)",
    ),
    (
        "geofence_exit",
        "warning",
        "Vehicle left its assigned service zone",
    ),
    (
        "tamper",
        "warning",
        "Telematics unit tamper switch triggered",
    ),
    (
        "panic_button",
        "critical",
        "Driver pressed the panic button",
    ),
    (
        "crash_detected",
        "critical",
        "Possible crash detected by the on-board accelerometer",
    ),
];
