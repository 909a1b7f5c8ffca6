//! How reports read on a terminal: the configuration, a collect, a send.

use tidings::clock::{Clock, SystemClock};

use super::Outcome;
use tidings::app::{CollectReport, SendReport, SourceStatus};
use tidings::config::Config;

pub(super) fn print_config(c: &Config) {
    println!("configuration {} is valid", c.path.display());
    println!("  site:      {} <{}>", c.site.title, c.site.base_url);
    println!("  from:      {}", c.site.from);
    println!("  database:  {}", c.database);
    match &c.smtp {
        Some(s) => println!(
            "  delivery:  SMTP {}://{}:{} (starttls {:?}, {})",
            if s.implicit_tls { "smtps" } else { "smtp" },
            s.host,
            s.port,
            s.starttls,
            if s.username.is_some() { "with AUTH" } else { "no AUTH" }
        ),
        None => println!("  delivery:  mailbox folder {}", c.mailbox_dir.display()),
    }
    println!("  templates: {}", c.site.templates_dir.display());
    if !c.site.base_url.starts_with("https://") {
        println!(
            "  note:      site.base_url is not https://; mail clients offer one-click unsubscribe (RFC 8058) only for https links"
        );
    }
    println!(
        "  secret:    {}",
        if c.secret.is_some() {
            "from TIDINGS_SECRET"
        } else {
            "generated and kept in the database"
        }
    );
    match &c.briefing {
        Some(b) => println!(
            "  briefing:  model {} at {} ({}; {} at once, {}s timeout, at most {} stories a run, unverified fields: {})",
            b.model,
            b.endpoint,
            if b.api_key.is_some() { "with a key" } else { "no key" },
            b.concurrency,
            b.timeout.as_secs(),
            b.max_stories_per_run,
            match b.unverified {
                tidings::config::UnverifiedPolicy::Fallback => "fall back",
                tidings::config::UnverifiedPolicy::Hold => "hold the issue",
            }
        ),
        None => println!("  briefing:  off (extractive TL;DR)"),
    }
    println!("  sources ({}):", c.sources.len());
    for s in &c.sources {
        println!(
            "    {} — {} (weight {}, tags: {})",
            s.name,
            s.location,
            s.weight,
            s.tags.join(", ")
        );
    }
    println!("  tag rules ({}):", c.tag_rules.len());
    for t in &c.tag_rules {
        println!("    {}: {}", t.tag, t.keywords.join(", "));
    }
    println!("  audiences ({}):", c.audiences.len());
    for a in c.audiences.values() {
        let w: Vec<String> = a.weights.iter().map(|(t, w)| format!("{t}={w}")).collect();
        println!("    {} \"{}\": {}", a.name, a.title, w.join(", "));
        let mut extra = Vec::new();
        if !a.source_weights.is_empty() {
            let s: Vec<String> = a.source_weights.iter().map(|(n, w)| format!("{n}={w}")).collect();
            extra.push(format!("source weights {}", s.join(", ")));
        }
        if !a.exclude_tags.is_empty() {
            extra.push(format!(
                "excludes {}",
                a.exclude_tags.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(h) = a.half_life {
            extra.push(format!(
                "half-life {}",
                humantime::format_duration(h.to_std().unwrap_or_default())
            ));
        }
        extra.push(format!(
            "threshold {}, cluster bonus {} (max {})",
            a.threshold, a.cluster_bonus, a.cluster_bonus_max
        ));
        println!("      {}", extra.join("; "));
    }
    println!("  editions ({}):", c.editions.len());
    let now = SystemClock.now();
    for e in &c.editions {
        let next = e
            .schedule
            .next_after(now)
            .map(|t| {
                t.with_timezone(&e.schedule.timezone())
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|| "never".into());
        println!(
            "    {} \"{}\" for {}: \"{}\" {} (next {}), {} days, up to {} stories, template {}",
            e.name,
            e.title,
            e.audience,
            e.schedule.expr(),
            e.schedule.timezone(),
            next,
            e.window_days,
            e.max_stories,
            e.template
        );
        println!("      at most {} per source", e.max_per_source);
        for section in &e.sections {
            let tags = if section.tags.is_empty() {
                "every other story".to_string()
            } else {
                section.tags.join(", ")
            };
            let max = section.max.map_or(String::new(), |m| format!(", up to {m}"));
            println!("      section \"{}\": {tags}{max}", section.title);
        }
    }
}

pub(super) fn print_collect(report: &CollectReport) {
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    for s in &report.sources {
        let moved = s
            .moved_to
            .as_deref()
            .map(|u| format!(" (moved permanently to {u})"))
            .unwrap_or_default();
        match &s.status {
            SourceStatus::Collected {
                new,
                unchanged,
                skipped,
                dropped,
                recovered,
            } => {
                let mut extra = String::new();
                if *skipped > 0 {
                    extra.push_str(&format!(", {skipped} skipped (no title or link)"));
                }
                if *dropped > 0 {
                    extra.push_str(&format!(", {dropped} over the item limit dropped"));
                }
                if let Some(repaired) = recovered {
                    extra.push_str(&format!(" (recovered: {repaired})"));
                }
                println!(
                    "{:<28} ok            {new} new, {unchanged} unchanged{extra}{moved}",
                    s.name
                )
            }
            SourceStatus::NotModified => println!("{:<28} not modified{moved}", s.name),
            SourceStatus::Failed { reason, next_try } => println!(
                "{:<28} FAILED        {reason} ({}); next try {}",
                s.name,
                s.location,
                time(next_try)
            ),
            SourceStatus::NotDue { until, errors } if *errors > 0 => println!(
                "{:<28} backing off   after {errors} failures, until {} (--force to fetch now)",
                s.name,
                time(until)
            ),
            SourceStatus::NotDue { until, .. } => {
                println!("{:<28} not due       until {}", s.name, time(until))
            }
            SourceStatus::Disabled(reason) => println!("{:<28} DISABLED      {reason}", s.name),
        }
    }
    let a = &report.articles;
    if a != &tidings::collect::ArticleCounts::default() {
        let mut line = format!("articles: {} extracted, {} without text", a.extracted, a.failed);
        if a.refused > 0 {
            line.push_str(&format!(", {} refused by robots.txt", a.refused));
        }
        if a.deferred > 0 {
            line.push_str(&format!(", {} waiting for robots.txt", a.deferred));
        }
        println!("{line}");
    }
    println!(
        "{} sources: {} fetched, {} not modified, {} failed, {} not due; {} new stories in {:.1}s",
        report.sources.len(),
        report.fetched(),
        report.not_modified(),
        report.failed(),
        report.not_due(),
        report.new_stories(),
        report.elapsed.as_secs_f64()
    );
}

pub(super) fn print_send(edition: &str, report: &SendReport) -> Outcome {
    match report {
        SendReport::AwaitingApproval { slot, unverified } => {
            let why = if *unverified > 0 {
                format!(
                    ": its cards hold {unverified} field{} the grounding check could not verify ([briefing] unverified = \"hold\"; see tidings preview {edition}, or tidings issue edit)",
                    if *unverified == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            println!(
                "{edition}: not sent — the issue of {} waits for an editor's approval (tidings issue approve {edition}){why}",
                slot.format("%Y-%m-%d %H:%M UTC")
            );
            Outcome::Failure
        }
        SendReport::TooFew { slot, found, min } => {
            println!(
                "{edition}: not sent — {found} stories rank for this issue ({}), the edition needs at least {min}",
                slot.format("%Y-%m-%d %H:%M UTC")
            );
            Outcome::Success
        }
        SendReport::DryRun {
            slot,
            subject,
            stories,
            recipients,
            existing,
        } => {
            println!(
                "{edition}: dry run for the issue of {}",
                slot.format("%Y-%m-%d %H:%M UTC")
            );
            println!("  subject:    {subject}");
            println!("  stories:    {stories}");
            match existing {
                Some(c) => println!(
                    "  already composed: {} sent, {} failed{}, {} would be sent now",
                    c.sent,
                    c.failed,
                    withdrawn_clause(c),
                    recipients
                ),
                None => println!("  recipients: {recipients}"),
            }
            Outcome::Success
        }
        SendReport::Delivered {
            issue,
            composed,
            run,
            briefing,
        } => {
            let c = &run.counts;
            if !composed && run.sent == 0 && run.retried == 0 && run.failed == 0 && c.pending + c.sending == 0 {
                println!(
                    "{edition}: the issue of {} was already sent ({} sent, {} failed{}); nothing new to send",
                    issue.slot_at.format("%Y-%m-%d %H:%M UTC"),
                    c.sent,
                    c.failed,
                    withdrawn_clause(c)
                );
            } else {
                println!(
                    "{edition}: issue #{} of {} \"{}\"{}",
                    issue.id,
                    issue.slot_at.format("%Y-%m-%d %H:%M UTC"),
                    issue.subject,
                    if *composed { " composed" } else { "" }
                );
                println!(
                    "  this run: {} sent, {} to retry, {} failed; issue: {} of {} sent",
                    run.sent,
                    run.retried,
                    run.failed,
                    c.sent,
                    c.total()
                );
            }
            if let Some(b) = briefing.as_ref().filter(|b| b.reused + b.uncached > 0) {
                println!(
                    "  cards: {} from the briefing cache, {} stories with the extractive TL;DR only",
                    b.reused, b.uncached
                );
            }
            for (email, reply) in &run.failures {
                println!("  refused: {email}: {reply}");
            }
            let exhausted = run
                .failures
                .iter()
                .filter(|(_, r)| r.starts_with("gave up after"))
                .count();
            if run.stopped {
                println!(
                    "  stopped by a signal; {} deliveries left for the next run (`tidings send {edition}`)",
                    c.pending + c.sending
                );
                Outcome::Failure
            } else if c.pending + c.sending > 0 {
                println!(
                    "  {} deliveries still waiting{}; run `tidings send {edition}` again later or keep `tidings serve` running",
                    c.pending + c.sending,
                    run.next_due
                        .map(|t| format!(" (next retry {})", t.format("%H:%M:%S UTC")))
                        .unwrap_or_default()
                );
                Outcome::Failure
            } else if exhausted > 0 {
                println!("  {exhausted} deliveries ran out of attempts");
                Outcome::Failure
            } else {
                Outcome::Success
            }
        }
    }
}

/// One line on what a run of the briefing did (`collect`, `rank`, `preview`).
pub(super) fn briefing_line(report: &tidings::brief::BriefReport) -> String {
    let mut line = format!(
        "briefing: {} drafted, {} reused, {} rejected",
        report.drafted, report.reused, report.rejected
    );
    if report.failed > 0 {
        line.push_str(&format!(", {} failed", report.failed));
    }
    if report.intros > 0 {
        line.push_str(&format!(", {} intro drafted (tidings issue show)", report.intros));
    }
    if report.over_budget > 0 {
        line.push_str(&format!(
            ", {} left for the next run (max_stories_per_run)",
            report.over_budget
        ));
    }
    line.push_str(&format!(
        "; {} requests, {} tokens in, {} out",
        report.requests, report.tokens_in, report.tokens_out
    ));
    if let Some(e) = &report.last_error {
        line.push_str(&format!("\n  last problem: {e}"));
    }
    line
}

/// A story's card, as `tidings briefing` shows it: each field with its
/// grounding mark, the sources, the timeline and the editor's edits.
pub(super) fn print_briefing(b: &tidings::app::StoryBriefing) {
    use tidings::domain::CardText;
    let s = &b.story;
    println!(
        "#{} {} — {} ({})",
        s.id,
        s.title,
        s.source,
        s.published_at.format("%Y-%m-%d")
    );
    let mark = |t: &CardText| {
        if t.verified() {
            String::new()
        } else {
            format!(
                "\n    UNVERIFIED: {} not in the sources — \"{}\"",
                t.grounding.unsupported.join(", "),
                t.grounding.sentences.join(" ")
            )
        }
    };
    match &b.card {
        Some(card) => {
            println!(
                "drafted by {} at {}",
                card.model,
                card.drafted_at.format("%Y-%m-%d %H:%M UTC")
            );
            println!("  tldr: {}{}", card.tldr.text, mark(&card.tldr));
            println!("  what_changed: {}{}", card.what_changed.text, mark(&card.what_changed));
            for w in &card.why_it_matters {
                println!("  why_it_matters ({}): {}{}", w.audience, w.text.text, mark(&w.text));
            }
            println!(
                "  what_to_do_next: {}{}",
                card.what_to_do_next.text,
                mark(&card.what_to_do_next)
            );
            for t in &card.takeaways {
                let cites: Vec<String> = t.sources.iter().map(|n| format!("[{n}]")).collect();
                println!("  takeaway: {} {}{}", t.text.text, cites.join(" "), mark(&t.text));
            }
            for (i, src) in card.sources.iter().enumerate() {
                println!("  [{}] {} {}", i + 1, src.source, src.link);
            }
        }
        None => match &b.rejection {
            Some(reason) => {
                println!("no card: the model's answers were rejected ({reason}); the extractive TL;DR stands")
            }
            None => println!(
                "no card: {}",
                b.report.last_error.as_deref().unwrap_or("the model gave none")
            ),
        },
    }
    for (edition, field, text) in &b.edits {
        println!("  edited for {edition}: {field}: {text}");
    }
    if !b.timeline.is_empty() {
        println!("timeline:");
        for e in &b.timeline {
            println!("  {} {} — {}", e.published_at.format("%Y-%m-%d"), e.title, e.source);
        }
    }
    println!("{}", briefing_line(&b.report));
}

/// ", 3 withdrawn" after an issue's counts, or nothing when no reader left
/// before their turn (the usual case, so the usual line stays as it was).
pub(super) fn withdrawn_clause(c: &tidings::store::DeliveryCounts) -> String {
    if c.withdrawn > 0 {
        format!(", {} withdrawn", c.withdrawn)
    } else {
        String::new()
    }
}
