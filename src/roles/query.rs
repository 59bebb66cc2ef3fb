//! `mpcstats query STAT`: ask for one statistic. The parties send this consumer their share
//! pairs of the result only; every component must arrive identically from the two parties
//! that hold it, so a single faulty party cannot change the answer unnoticed.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::client::Client;
use crate::config::Cluster;
use crate::stats::Query;
use crate::wire::QuerySpec;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Statistics:
  count, sum, mean           the count is public; the mean opens only Σx
  variance, stddev           sample (n − 1) as Python's statistics.variance/stdev;
                             --population for pvariance/pstdev
  min, max, median           median of an even count is the mean of the two middle values
  quantile --q Q             Q in [0, 1], linear interpolation between closest ranks
  percentile --p P           P in [0, 100]; as numpy.percentile (method \"linear\")
  gini                       Gini coefficient, 6 decimals (half to even); undefined if Σx = 0
  lorenz --points K          Lorenz curve: the share of the total held by the lowest 1/K, 2/K, …
                             of contributions, 6 decimals; each block of n/K ≥ min_cohort
  histogram --edges E,E,…    counts per [e_k, e_k+1), plus below the first and from the last
Any statistic takes --where \"OP VALUE\" (OP one of < <= > >= == !=): only matching
contributions count; their number is revealed and must reach the dataset's min_cohort.
Results print in the dataset's units with its number of decimals, rounded half to even.

Examples:
  mpcstats query median --dataset eth_balance
  mpcstats query percentile --p 90 --dataset eth_balance --where \">= 0.01\"
  mpcstats query histogram --edges 0,1,10,100 --dataset eth_balance")]
pub struct Args {
    /// The statistic (see below)
    pub stat: String,
    /// The dataset to compute over
    #[arg(long)]
    pub dataset: String,
    /// Population variance / standard deviation instead of the sample ones
    #[arg(long)]
    pub population: bool,
    /// Quantile in [0, 1] (for `quantile`)
    #[arg(long, value_name = "Q")]
    pub q: Option<String>,
    /// Percentile in [0, 100] (for `percentile`)
    #[arg(long, value_name = "P")]
    pub p: Option<String>,
    /// Points of the Lorenz curve, 2 to 100 (for `lorenz`)
    #[arg(long, value_name = "K")]
    pub points: Option<String>,
    /// Bucket edges, increasing, comma-separated (for `histogram`)
    #[arg(long, value_name = "E,E,…", value_delimiter = ',')]
    pub edges: Vec<String>,
    /// Only count contributions satisfying this, e.g. ">= 0.5"
    #[arg(long = "where", value_name = "OP VALUE", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Seconds to wait for any one answer
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let cluster = Cluster::load(&Cluster::locate(cluster_flag))?;
    match (args.stat.as_str(), &args.q, &args.p) {
        ("quantile", _, Some(_)) => anyhow::bail!("quantile takes --q (in [0, 1]), not --p"),
        ("percentile", Some(_), _) => anyhow::bail!("percentile takes --p (in [0, 100]), not --q"),
        (_, Some(_), Some(_)) => anyhow::bail!("give --q or --p, not both"),
        ("lorenz", _, _) if args.q.is_some() || args.p.is_some() => {
            anyhow::bail!("lorenz takes --points K, not --q or --p")
        }
        (s, _, _) if s != "lorenz" && args.points.is_some() => {
            anyhow::bail!("only lorenz takes --points")
        }
        _ => {}
    }
    let spec = QuerySpec {
        dataset: args.dataset,
        stat: args.stat,
        population: args.population,
        param: args.q.or(args.p).or(args.points),
        edges: args.edges,
        filter: args.filter,
    };
    // Validate locally first: a bad request never leaves this machine.
    let query = Query::new(&spec, cluster.dataset(&spec.dataset)?)?;
    let mut client = Client::connect(&cluster).await?;
    client.timeout = Duration::from_secs(args.timeout.max(1));
    let answer = super::client::patiently(|| client.query(&spec)).await?;
    match &query.filter {
        Some(f) => println!(
            "{answer}  ({} contributions with value {})",
            answer.count,
            f.describe(query.scale)
        ),
        None => println!("{answer}"),
    }
    let epoch = format!(
        "epoch {} ({} contributions)",
        answer.epoch,
        answer.epoch * cluster.dataset(&spec.dataset)?.epoch_size()
    );
    let mode = answer.security.map_or(String::new(), |s| {
        format!("; computed in {} mode", s.name())
    });
    match &answer.spent {
        Some(s) => eprintln!(
            "{epoch}; differentially private: {} of {} releases made, ε {} spent, ε {} left{mode}",
            s.used, s.releases, s.epsilon_spent, s.epsilon_left
        ),
        None => eprintln!("{epoch}{mode}"),
    }
    Ok(())
}
