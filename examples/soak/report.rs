//! The soak's per-minute samples and its verdict table.

use std::sync::atomic::Ordering::Relaxed;

use crate::load::Counts;
use crate::Hooks;

/// One minute's sample, from one reading a second. RSS: the median (and maximum). Open
/// descriptors are split in two: *files* (everything but sockets: the SQLite file, its WAL
/// and shared memory, epoll, eventfds, pipes), which must not grow at all, and *sockets*
/// (client connections in flight and pooled, upstream connections), which follow the
/// connections open at that instant — shown as the minute's minimum, median and maximum.
/// RSS is also shown split (`RssAnon`: heap and stacks; `RssFile`: the binary's pages and
/// mapped files), with the part of it in transparent huge pages (`AnonHugePages`), beside the
/// thread count — so a step in RSS can be told apart from khugepaged collapsing 2 MiB
/// pages or a blocking-pool thread coming or going.
pub(crate) struct Row {
    pub(crate) minute: u64,
    pub(crate) rss_kib: u64,
    pub(crate) rss_max: u64,
    pub(crate) anon_kib: u64,
    pub(crate) file_kib: u64,
    pub(crate) huge_kib: u64,
    pub(crate) threads_max: u64,
    pub(crate) files_max: u64,
    pub(crate) sockets_min: u64,
    pub(crate) sockets: u64,
    pub(crate) sockets_max: u64,
    pub(crate) ok: u64,
    pub(crate) accepted: u64,
    pub(crate) called_back: u64,
    pub(crate) errors: u64,
}

/// One reading of the gateway process.
pub(crate) struct Reading {
    rss: u64,
    anon: u64,
    file: u64,
    huge: u64,
    threads: u64,
    files: u64,
    sockets: u64,
}

/// A `Name:   123 kB` line of /proc/PID/status, as a number.
fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The gateway's RSS, threads and open descriptors now.
pub(crate) fn probe(pid: u32) -> Reading {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let (mut files, mut sockets) = (0, 0);
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in dir.flatten() {
            match std::fs::read_link(entry.path()) {
                Ok(t) if t.to_string_lossy().starts_with("socket:") => sockets += 1,
                Ok(_) => files += 1,
                Err(_) => {} // closed between the listing and the read
            }
        }
    }
    Reading {
        rss: status_field(&status, "VmRSS:"),
        anon: status_field(&status, "RssAnon:"),
        file: status_field(&status, "RssFile:"),
        huge: status_field(&rollup, "AnonHugePages:"),
        threads: status_field(&status, "Threads:"),
        files,
        sockets,
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The minute's row from its per-second `readings` and the totals so far.
pub(crate) fn sample(minute: u64, readings: &[Reading], counts: &Counts, hooks: &Hooks) -> Row {
    let col = |f: fn(&Reading) -> u64| readings.iter().map(f).collect::<Vec<u64>>();
    let (rss, files, sockets) = (col(|r| r.rss), col(|r| r.files), col(|r| r.sockets));
    Row {
        minute,
        rss_max: rss.iter().copied().max().unwrap_or(0),
        rss_kib: median(rss),
        anon_kib: median(col(|r| r.anon)),
        file_kib: median(col(|r| r.file)),
        huge_kib: median(col(|r| r.huge)),
        threads_max: col(|r| r.threads).into_iter().max().unwrap_or(0),
        files_max: files.iter().copied().max().unwrap_or(0),
        sockets_min: sockets.iter().copied().min().unwrap_or(0),
        sockets_max: sockets.iter().copied().max().unwrap_or(0),
        sockets: median(sockets),
        ok: counts.ok.load(Relaxed),
        accepted: counts.accepted.load(Relaxed),
        called_back: hooks.seen.lock().map(|s| s.len() as u64).unwrap_or(0),
        errors: counts.error_total(),
    }
}

/// A row as printed while the soak runs.
pub(crate) fn line(r: &Row) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        r.minute,
        r.rss_kib,
        r.rss_max,
        r.anon_kib,
        r.file_kib,
        r.huge_kib,
        r.threads_max,
        r.files_max,
        r.sockets_min,
        r.sockets,
        r.sockets_max,
        r.ok,
        r.accepted,
        r.called_back,
        r.errors
    )
}

/// `prefer_gateway_config_reloads_total{outcome="applied"}` from a /metrics scrape.
pub(crate) fn reloads_applied(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("prefer_gateway_config_reloads_total") && l.contains("applied"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The verdict and the markdown that goes to bench/results/.
pub(crate) struct Verdict {
    pub(crate) ok: bool,
    pub(crate) markdown: String,
}

/// (max − min) / min over minutes 10..=end, in percent.
fn spread(rows: &[Row], f: impl Fn(&Row) -> u64) -> (u64, u64, f64) {
    let vals: Vec<u64> = rows.iter().filter(|r| r.minute >= 10).map(f).collect();
    let (min, max) = (
        vals.iter().copied().min().unwrap_or(0),
        vals.iter().copied().max().unwrap_or(0),
    );
    let pct = if min == 0 {
        0.0
    } else {
        (max - min) as f64 * 100.0 / min as f64
    };
    (min, max, pct)
}

/// Checks the run: no errors, nothing lost, every reload applied, RSS and open files flat.
pub(crate) fn finish(
    rows: &[Row],
    counts: &Counts,
    hooks: &Hooks,
    reloads: u64,
    applied: u64,
) -> Verdict {
    let accepted = counts.accepted.load(Relaxed);
    let called = hooks.seen.lock().map(|s| s.len() as u64).unwrap_or(0);
    let lost = accepted.saturating_sub(called);
    let errors = counts.error_total();
    let (rmin, rmax, rpct) = spread(rows, |r| r.rss_kib);
    let (fmin, fmax, fpct) = spread(rows, |r| r.files_max);
    let (smin, smax, _) = spread(rows, |r| r.sockets_min);
    let long = rows.len() >= 11;
    let ok =
        errors == 0 && lost == 0 && applied >= reloads && (!long || (rpct <= 10.0 && fpct <= 10.0));
    let mut md = String::from("| minute | RSS KiB (median) | RSS KiB (max) | anon KiB (median) | file KiB (median) | huge pages KiB (median) | threads (max) | open files (max) | sockets (min) | sockets (median) | sockets (max) | 200s so far (proxy, waiters, sync) | jobs accepted | callbacks (distinct jobs) | errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        md.push_str(&line(r));
        md.push('\n');
    }
    md.push_str(&format!(
        "\n- errors outside the contract: **{errors}**\n- jobs accepted {accepted}, called back {called}, lost **{lost}**, repeated callbacks {}\n- job status reads `succeeded`: {}\n- reloads sent {reloads}, applied {applied}\n- RSS (per-minute medians) minutes 10–{end}: {rmin}–{rmax} KiB (spread {rpct:.1} %)\n- open files, not sockets (per-minute maximums) minutes 10–{end}: {fmin}–{fmax} (spread {fpct:.1} %)\n- sockets (per-minute minimums, the connections always open: not checked, they follow the load) minutes 10–{end}: {smin}–{smax}\n- verdict: **{}**\n",
        hooks.repeats.load(Relaxed),
        counts.status_reads.load(Relaxed),
        if ok { "pass" } else { "FAIL" },
        end = rows.last().map_or(0, |r| r.minute),
    ));
    if let Ok(e) = counts.errors.lock() {
        for (kind, (n, detail)) in e.iter() {
            md.push_str(&format!("- error `{kind}`: {n} (first: {detail})\n"));
        }
    }
    Verdict { ok, markdown: md }
}
