//! The template's checks of a response: `http::parse_response` with `map`/`unmap`, the
//! prover's `Template::locate` and the parties' `Template::check_response` (for a window
//! taken from the input), JSON paths and lookups, and the value text check. Holds no decoder
//! of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcstats::oracle::template::http::parse_response;
use mpcstats::oracle::template::json;
use mpcstats::oracle::template::value::check_value_text;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_response(data) {
        let body = r.body(data);
        for d in &r.data {
            assert!(d.start >= r.body_start && d.start < d.end && d.end <= data.len());
            let mapped = r.map(d).expect("a data range maps");
            assert_eq!(body[mapped.clone()], data[d.clone()]);
            assert_eq!(r.unmap(&mapped), Some(d.clone()));
        }
    }
    let datasets = [
        mpcstats::roles::init::exchange_dataset(),
        mpcstats::roles::init::signed_dataset(),
        mpcstats::roles::init::profile_dataset(),
    ];
    let (a, b) = match data {
        [x, y, ..] => (usize::from(*x), usize::from(*x) + usize::from(*y)),
        _ => (0, 0),
    };
    for ds in &datasets {
        let t = ds
            .template
            .as_ref()
            .expect("a proven dataset has a template");
        if let Ok((d, account)) = t.locate(data, vec![]) {
            let w = d.value.start as usize..d.value.end as usize;
            let mut opened = data.to_vec();
            opened[w.clone()].fill(b'1');
            assert_eq!(
                t.check_response(&opened, w).expect("locate's check"),
                account
            );
        }
        let _ = t.check_response(data, a..b);
        let lens: Vec<u32> = data.iter().take(4).map(|&x| u32::from(x) * 8).collect();
        let _ = t.request_layout(&lens);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = json::parse_path(text);
        let value: serde_json::Value =
            serde_json::from_str(r#"{"a":[{"k":"v","x":"1.5"}],"b":2}"#).expect("JSON");
        let _ = json::lookup(&value, text);
        let _ = json::find_window(data, &value, text);
    }
    let _ = json::check_window(data, &(a..b), "a[k=v].x", "b");
    let _ = check_value_text(data, 8);
});
