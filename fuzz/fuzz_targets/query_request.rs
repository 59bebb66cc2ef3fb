//! A consumer's statistic request as the coordinator, every party and the REST API parse it:
//! lines of the input are the statistic, its parameter, the histogram edges (comma
//! separated) and the filter, checked by `Query::new` against each dataset `init` writes;
//! also `Stat::parse`, `Filter::parse`, `decimal::parse` and `Dataset::parse_value`. Holds no
//! decoder of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcstats::decimal::{self, Excess};
use mpcstats::stats::{Filter, Query, Stat};
use mpcstats::wire::QuerySpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let stat = lines.next().unwrap_or_default();
    let param = lines.next().filter(|p| !p.is_empty()).map(str::to_string);
    let edges: Vec<String> = lines
        .next()
        .filter(|e| !e.is_empty())
        .map(|e| e.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let filter = lines.next().filter(|f| !f.is_empty()).map(str::to_string);
    let _ = Stat::parse(stat);
    for scale in [0, 8, 18, 38, 40] {
        for excess in [Excess::Reject, Excess::Truncate] {
            if let Ok(v) = decimal::parse(text, scale, excess) {
                let back = decimal::format(v, scale);
                assert_eq!(decimal::parse(&back, scale, Excess::Reject).ok(), Some(v));
            }
        }
    }
    for ds in [
        mpcstats::roles::init::example_dataset(),
        mpcstats::roles::init::exchange_dataset(),
        mpcstats::roles::init::profile_dataset(),
    ] {
        let _ = ds.parse_value(text);
        let spec = QuerySpec {
            dataset: ds.name.clone(),
            stat: stat.to_string(),
            population: data.first().is_some_and(|b| b & 1 == 1),
            param: param.clone(),
            edges: edges.clone(),
            filter: filter.clone(),
        };
        let _ = Query::new(&spec, &ds);
        if let Some(f) = &filter {
            let _ = Filter::parse(f, &ds);
        }
    }
});
