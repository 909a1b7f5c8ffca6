//! The storage API on every backend: SQLite always, PostgreSQL when
//! `TIDINGS_TEST_POSTGRES_URL` is set.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tidings::config::DatabaseUrl;
use tidings::config::Secret;
use tidings::domain::{Channel, EmailAddress, InboundKind, NewStory, StoryKey, SubscriberStatus, TagOrigin, TaggedTag};
use tidings::store::{
    DeliveryOutcome, DeliveryRef, IssueRow, NewInboundEvent, NewIssue, Recorded, SoftBouncePolicy, Store,
};

use crate::support::{Db, databases, finish};

async fn open(db: &Db, dir: &tempfile::TempDir) -> Store {
    let url = match db {
        Db::Sqlite => DatabaseUrl::Sqlite(dir.path().join("nested/dir/test.db")),
        Db::Postgres(u) => DatabaseUrl::Postgres(Secret::new(u.clone())),
    };
    let store = Store::open(&url).await.expect("open store");
    // Migrating twice is a no-op.
    store.migrate().await.expect("migrate again");
    store
}

fn story(key: &str, hours_ago: i64) -> NewStory {
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("time");
    NewStory {
        key: StoryKey(key.into()),
        source: "S".into(),
        guid: Some(key.into()),
        title: format!("Title {key} — ünïcode 🖥️"),
        link: format!("https://example.com/{key}"),
        summary_html: "<p>x</p>".into(),
        summary_text: "x".into(),
        published_at: now - Duration::hours(hours_ago),
        collected_at: now,
        tags: vec![
            TaggedTag {
                tag: "security".into(),
                origin: TagOrigin::Keyword("breach".into()),
            },
            TaggedTag {
                tag: "cloud".into(),
                origin: TagOrigin::Source,
            },
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stories_are_stored_once_with_their_tags() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        if matches!(db, Db::Sqlite) {
            // A new file gets 16 KiB pages: a story row is about 1.6 KiB.
            let file = dir.path().join("nested/dir/test.db");
            let mut conn =
                <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", file.display()))
                    .await
                    .expect("open the file directly");
            let page: i64 = sqlx::query_scalar("PRAGMA page_size")
                .fetch_one(&mut conn)
                .await
                .expect("pragma");
            assert_eq!(page, 16384);
        }
        let batch = vec![story("a", 1), story("b", 30), story("c", 400)];
        assert_eq!(
            store
                .insert_stories(batch)
                .await
                .expect("insert")
                .iter()
                .flatten()
                .count(),
            3,
            "{db:?}"
        );
        // Again, among 447 new stories (more than one statement's 200
        // rows): the known ones get no id, each new one its own.
        let mut bigger: Vec<NewStory> = (0..447).map(|i| story(&format!("n{i}"), 240)).collect();
        for (at, known) in [(0, "a"), (250, "b"), (446, "c")] {
            bigger.insert(at, story(known, 1));
        }
        let keys: Vec<String> = bigger.iter().map(|s| s.key.0.clone()).collect();
        let ids = store.insert_stories(bigger).await.expect("insert again");
        assert_eq!(ids.len(), 450);
        for (key, id) in keys.iter().zip(&ids) {
            match id {
                None => assert!(["a", "b", "c"].contains(&key.as_str()), "{key} got no id ({db:?})"),
                Some(id) => {
                    let stored = store.story(*id).await.expect("story").expect("stored");
                    assert_eq!(stored.title, format!("Title {key} — ünïcode 🖥️"), "{db:?}");
                    assert_eq!(stored.tags.len(), 2, "{key}: tags ({db:?})");
                }
            }
        }
        assert_eq!(ids.iter().flatten().count(), 447, "{db:?}");
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("time");
        let recent = store
            .stories_published_between(now - Duration::days(7), now)
            .await
            .expect("query");
        let titles: Vec<&str> = recent.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["Title a — ünïcode 🖥️", "Title b — ünïcode 🖥️"], "{db:?}");
        assert_eq!(recent[0].published_at, now - Duration::hours(1));
        let tags: Vec<(&str, TagOrigin)> = recent[0]
            .tags
            .iter()
            .map(|t| (t.tag.as_str(), t.origin.clone()))
            .collect();
        assert_eq!(
            tags,
            [
                ("cloud", TagOrigin::Source),
                ("security", TagOrigin::Keyword("breach".into()))
            ],
            "{db:?}"
        );
        store.close().await;
        finish(db).await;
    }
}

/// One story and three readers of "weekly" (a@, b@ and c@example.com, with
/// these statuses); returns the story's id.
async fn story_and_readers(store: &Store, now: DateTime<Utc>, statuses: [SubscriberStatus; 3]) -> i64 {
    store.insert_stories(vec![story("a", 1)]).await.expect("insert");
    for (email, status) in ["a@example.com", "b@example.com", "c@example.com"]
        .into_iter()
        .zip(statuses)
    {
        let email = EmailAddress::parse(email).expect("valid");
        store
            .add_subscriber(&email, Some("Name"), status, &["weekly".to_string()], now)
            .await
            .expect("add");
    }
    store
        .stories_published_between(now - Duration::days(7), now)
        .await
        .expect("stories")[0]
        .id
}

/// The "weekly" issue of the slot at `now`.
fn weekly_issue(now: DateTime<Utc>, stories: &[(i64, f64)]) -> NewIssue<'_> {
    NewIssue {
        edition: "weekly",
        slot_at: now,
        composed_at: now,
        deliver_from: now,
        subject: "Subject",
        content: "{}",
        stories,
        message_id_nonce: "n0nce",
        message_id_domain: "example.com",
    }
}

/// The weekly issue of the slot at `now`, composed for three active readers.
async fn issue_to_three_readers(store: &Store, now: DateTime<Utc>) -> IssueRow {
    let stories = [(story_and_readers(store, now, [SubscriberStatus::Active; 3]).await, 1.0)];
    let (issue, _) = store.create_issue(&weekly_issue(now, &stories)).await.expect("compose");
    issue
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_composes_once_and_claims_each_delivery_once() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
        let stories = [(
            story_and_readers(
                &store,
                now,
                [
                    SubscriberStatus::Active,
                    SubscriberStatus::Active,
                    SubscriberStatus::Unsubscribed,
                ],
            )
            .await,
            1.5,
        )];
        let issue = weekly_issue(now, &stories);
        let (row, created) = store.create_issue(&issue).await.expect("compose");
        assert!(created, "{db:?}");
        let (again, created) = store.create_issue(&issue).await.expect("compose again");
        assert!(!created, "{db:?}");
        assert_eq!(again.id, row.id);
        let counts = store.delivery_counts(row.id, now).await.expect("counts");
        assert_eq!(
            (counts.pending, counts.total()),
            (2, 2),
            "unsubscribed is not addressed: {db:?}"
        );

        let lease = now + Duration::minutes(5);
        let first = store
            .claim_deliveries_after(row.id, now, lease, 1, 0)
            .await
            .expect("claim");
        let second = store
            .claim_deliveries_after(row.id, now, lease, 10, 0)
            .await
            .expect("claim");
        assert_eq!((first.len(), second.len()), (1, 1), "{db:?}");
        assert_ne!(first[0].id, second[0].id);
        assert!(
            first[0].message_id.starts_with(&format!("<tidings.{}.n0nce.", row.id)),
            "{}",
            first[0].message_id
        );
        assert!(
            store
                .claim_deliveries_after(row.id, now, lease, 10, 0)
                .await
                .expect("claim")
                .is_empty(),
            "{db:?}"
        );

        store
            .record_outcomes(&[
                DeliveryOutcome::Sent {
                    id: first[0].id,
                    reply: "250 ok".into(),
                    at: now,
                },
                DeliveryOutcome::Retry {
                    id: second[0].id,
                    reply: "451 later".into(),
                    at: now + Duration::seconds(30),
                },
            ])
            .await
            .expect("sent and retry");
        assert!(
            store
                .claim_deliveries_after(row.id, now, lease, 10, 0)
                .await
                .expect("claim")
                .is_empty(),
            "not due yet"
        );
        // Due later: claimed again, with the attempt counted.
        let later = now + Duration::seconds(31);
        let retry = store
            .claim_deliveries_after(row.id, later, later + Duration::minutes(5), 10, 0)
            .await
            .expect("claim");
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].attempts, 2);
        // A lease that runs out hands the row to the next claimer.
        let expired = later + Duration::minutes(6);
        let reclaimed = store
            .claim_deliveries_after(row.id, expired, expired + Duration::minutes(5), 10, 0)
            .await
            .expect("claim");
        assert_eq!(reclaimed.len(), 1, "{db:?}");
        store
            .record_outcomes(&[DeliveryOutcome::Failed {
                id: reclaimed[0].id,
                subscriber_id: reclaimed[0].subscriber_id,
                reply: "550 no such user".into(),
                bounce: true,
                at: expired,
            }])
            .await
            .expect("failed");
        let counts = store.delivery_counts(row.id, expired).await.expect("counts");
        assert_eq!((counts.sent, counts.failed, counts.pending), (1, 1, 0), "{db:?}");
        let failed = store.failed_deliveries(row.id).await.expect("failures");
        assert_eq!(failed[0].1, "550 no such user");
        let bounced = store
            .subscriber(reclaimed[0].subscriber_id)
            .await
            .expect("query")
            .expect("exists");
        assert_eq!(bounced.status, SubscriberStatus::Bounced, "{db:?}");
        store.close().await;
        finish(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sent_row_keeps_its_own_reply_and_time() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
        let issue = issue_to_three_readers(&store, now).await;
        let rows = store
            .claim_deliveries_after(issue.id, now, now + Duration::minutes(5), 10, 0)
            .await
            .expect("claim");
        assert_eq!(rows.len(), 3);
        // Replies as servers write them (quotes, a backslash, non-ASCII) and
        // times finer than the database keeps.
        let replies = [
            r#"250 2.0.0 Ok: queued as "4Fx9Q" \ ünïcode"#,
            "250 OK id=1tZ-000aB-7c",
            r#"451 4.7.1 {"try": "later"}"#,
        ];
        let first = now + Duration::nanoseconds(1_234_567_891);
        let last = now + Duration::nanoseconds(2_500_000_999);
        // Only "sent" (one statement), then a retry among them (a transaction).
        store
            .record_outcomes(&[
                DeliveryOutcome::Sent {
                    id: rows[0].id,
                    reply: replies[0].into(),
                    at: first,
                },
                DeliveryOutcome::Sent {
                    id: rows[1].id,
                    reply: replies[1].into(),
                    at: last,
                },
            ])
            .await
            .expect("sent");
        store
            .record_outcomes(&[DeliveryOutcome::Retry {
                id: rows[2].id,
                reply: replies[2].into(),
                at: now + Duration::minutes(1),
            }])
            .await
            .expect("retry");
        // PostgreSQL keeps microseconds (truncated, as sqlx writes them);
        // SQLite keeps the text sqlx writes, to the nanosecond.
        let expected = match db {
            Db::Sqlite => (first, last),
            Db::Postgres(_) => (
                now + Duration::microseconds(1_234_567),
                now + Duration::microseconds(2_500_000),
            ),
        };
        let window = store.send_window(issue.id).await.expect("window");
        assert_eq!(window, Some(expected), "{db:?}");
        // Outcomes are committed without waiting for the WAL flush.
        let outcome_commits = store.outcome_commit_setting().await.expect("setting");
        match db {
            Db::Sqlite => assert_eq!(outcome_commits, None),
            Db::Postgres(_) => assert_eq!(outcome_commits.as_deref(), Some("off")),
        }
        for (row, reply) in rows.iter().zip(replies) {
            let kept = format!(
                "UPDATE deliveries SET attempts = attempts WHERE id = {} AND last_reply = '{}'",
                row.id,
                reply.replace('\'', "''")
            );
            assert_eq!(run_sql(&db, &dir, &kept).await, 1, "{reply:?} on {db:?}");
        }
        store.close().await;
        finish(db).await;
    }
}

/// Runs one statement on the test database outside the store, as another
/// program (or an earlier version of tidings) would.
async fn run_sql(db: &Db, dir: &tempfile::TempDir, sql: &str) -> u64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match db {
        Db::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("nested/dir/test.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open the file");
            sqlx::query(sql).execute(&mut conn).await.expect("sql").rows_affected()
        }
        Db::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect("sql").rows_affected()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_leases_without_changing_the_status_and_takes_over_rows_an_older_version_leased() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
        let issue = issue_to_three_readers(&store, now).await;
        let lease = now + Duration::minutes(5);
        let claimed = store
            .claim_deliveries_after(issue.id, now, lease, 2, 0)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 2, "{db:?}");
        let counts = store.delivery_counts(issue.id, now).await.expect("counts");
        assert_eq!(
            (counts.pending, counts.sending),
            (1, 2),
            "leased rows are being sent: {db:?}"
        );
        let after_lease = store
            .delivery_counts(issue.id, lease + Duration::seconds(1))
            .await
            .expect("counts");
        assert_eq!(
            (after_lease.pending, after_lease.sending),
            (3, 0),
            "a lease that ran out: {db:?}"
        );
        if matches!(db, Db::Postgres(_)) {
            // The claim's updates were HOT (no index written): the
            // backends report their counts when the store closes them.
            store.close().await;
            let Db::Postgres(url) = &db else { unreachable!() };
            let (updated, hot): (i64, i64) = settled_statistics(
                url,
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'deliveries'",
                |(updated, _): &(i64, i64)| *updated >= 2,
            )
            .await;
            assert_eq!((updated, hot), (2, 2), "both claims updated their row in place");
        }
        let store = open(&db, &dir).await;
        assert_eq!(
            run_sql(&db, &dir, "SELECT 1 FROM deliveries WHERE status <> 'pending'").await,
            0,
            "the claim left every status as it was: {db:?}"
        );

        // An earlier version marked a leased row 'sending': it counts as
        // being sent while its lease runs, and is taken over after.
        let unclaimed = format!(
            "UPDATE deliveries SET status = 'sending', attempts = 1, lease_until = '{}' WHERE issue_id = {} AND lease_until IS NULL",
            // As sqlx writes a time into SQLite; PostgreSQL reads it too.
            (now + Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
            issue.id
        );
        assert_eq!(run_sql(&db, &dir, &unclaimed).await, 1, "{db:?}");
        let counts = store.delivery_counts(issue.id, now).await.expect("counts");
        assert_eq!((counts.pending, counts.sending), (0, 3), "{db:?}");
        assert_eq!(
            store.next_delivery_due(issue.id).await.expect("due"),
            Some(now + Duration::minutes(1)),
            "the earliest lease to run out: {db:?}"
        );
        let later = now + Duration::minutes(2);
        let counts = store.delivery_counts(issue.id, later).await.expect("counts");
        assert_eq!((counts.pending, counts.sending), (1, 2), "{db:?}");
        assert_eq!(
            store.issues_with_due_deliveries(later).await.expect("due"),
            [issue.id],
            "{db:?}"
        );
        let taken = store
            .claim_deliveries_after(issue.id, later, later + Duration::minutes(5), 10, 0)
            .await
            .expect("claim");
        assert_eq!(taken.len(), 1, "only the row whose lease ran out: {db:?}");
        assert_eq!(taken[0].attempts, 2, "{db:?}");
        assert!(
            store.issues_with_due_deliveries(later).await.expect("due").is_empty(),
            "{db:?}"
        );
        // Given back untried: free again, the attempt not counted.
        store.release_deliveries(&[taken[0].id]).await.expect("release");
        let again = store
            .claim_deliveries_after(issue.id, later, later + Duration::minutes(5), 10, 0)
            .await
            .expect("claim");
        assert_eq!(
            (again.len(), again[0].id, again[0].attempts),
            (1, taken[0].id, 2),
            "{db:?}"
        );
        store.close().await;
        finish(db).await;
    }
}

/// The row `query` reads from PostgreSQL's statistics, once every other
/// connection to the database has gone (a backend reports its counts as it
/// exits) and `settled` accepts it; the last row read after 10 s.
async fn settled_statistics<T>(url: &str, query: &str, settled: impl Fn(&T) -> bool) -> T
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        poll.tick().await;
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut conn)
            .await
            .expect("fresh statistics");
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("connections");
        let row: T = sqlx::query_as(sqlx::AssertSqlSafe(query.to_string()))
            .fetch_one(&mut conn)
            .await
            .expect("statistics");
        if (others == 0 && settled(&row)) || tokio::time::Instant::now() > deadline {
            return row;
        }
    }
}

/// A count PostgreSQL keeps for index `index` of `deliveries` (`count`: an
/// expression over `pg_stat_user_indexes` and `pg_statio_user_indexes`),
/// once at least `at_least`.
async fn index_count(url: &str, index: &str, count: &str, at_least: i64) -> i64 {
    let query = format!(
        "SELECT ({count})::BIGINT FROM pg_statio_user_indexes JOIN pg_stat_user_indexes USING (indexrelid) WHERE pg_statio_user_indexes.indexrelname = '{index}'"
    );
    let (read,): (i64,) = settled_statistics(url, &query, |(read,): &(i64,)| *read >= at_least).await;
    read
}

/// Entries read from the primary key of `deliveries`, once at least `at_least`.
async fn primary_key_entries_read(url: &str, at_least: i64) -> i64 {
    index_count(url, "deliveries_pkey", "idx_tup_read", at_least).await
}

/// Pages of the partial index of unfinished deliveries read so far, once at
/// least `at_least`.
async fn unfinished_index_pages_read(url: &str, at_least: i64) -> i64 {
    index_count(url, "deliveries_unfinished", "idx_blks_hit + idx_blks_read", at_least).await
}

/// Adds `n` active readers of the weekly edition.
async fn weekly_readers(db: &Db, dir: &tempfile::TempDir, n: u32) {
    let sql = format!(
        "WITH added AS (INSERT INTO subscribers (email, status, created_at, updated_at)
                        SELECT 'reader' || g || '@example.com', 'active', now(), now() FROM generate_series(1, {n}) g
                        RETURNING id)
         INSERT INTO subscriptions (subscriber_id, edition) SELECT id, 'weekly' FROM added"
    );
    assert_eq!(run_sql(db, dir, &sql).await, u64::from(n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_reads_only_its_own_issue_past_earlier_issues_already_sent() {
    // A long-running list keeps every earlier issue's rows, all sent, below
    // the new issue's ids. A claim that walked the primary key from its
    // cursor read every one of them first (82 ms a claim behind 100,000
    // sent rows, growing with each issue); it must read the unfinished rows
    // of its own issue and no others.
    let Some(url) = crate::support::fresh_postgres_database().await else {
        return;
    };
    let db = Db::Postgres(url.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&db, &dir).await;
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
    let stories = [(story_and_readers(&store, now, [SubscriberStatus::Active; 3]).await, 1.0)];
    weekly_readers(&db, &dir, 3000).await;
    let (earlier, _) = store.create_issue(&weekly_issue(now, &stories)).await.expect("compose");
    let sent = format!(
        "UPDATE deliveries SET status = 'sent', sent_at = now() WHERE issue_id = {}",
        earlier.id
    );
    assert_eq!(run_sql(&db, &dir, &sent).await, 3003);
    let week_later = now + Duration::days(7);
    let (issue, _) = store
        .create_issue(&weekly_issue(week_later, &stories))
        .await
        .expect("compose the next");
    store.close().await;
    let before = primary_key_entries_read(&url, 0).await;

    let store = open(&db, &dir).await;
    let lease = week_later + Duration::minutes(5);
    let mut cursor = 0;
    for _ in 0..2 {
        let claimed = store
            .claim_deliveries_after(issue.id, week_later, lease, 10, cursor)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 10);
        assert!(claimed.iter().all(|d| d.id > cursor));
        cursor = claimed.iter().map(|d| d.id).max().unwrap_or(cursor);
    }
    store.close().await;
    // Each claim updates its 10 rows through the primary key: 20 entries.
    let read = primary_key_entries_read(&url, before + 20).await - before;
    assert!(
        read <= 40,
        "two claims of 10 read {read} entries of the primary key (the earlier issue has 3,003 rows)"
    );
    finish(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_starts_at_its_cursor_past_its_own_issue_rows_already_sent() {
    // A sent row leaves PostgreSQL's partial index only when the table is
    // vacuumed, which a large table waits for long after its send. A claim
    // positioned at the issue's first entry stepped over every row the
    // issue had sent so far (4–6 ms a claim halfway through 100,000); it
    // must start at its cursor.
    let Some(url) = crate::support::fresh_postgres_database().await else {
        return;
    };
    let db = Db::Postgres(url.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&db, &dir).await;
    // No vacuum during the test: it would remove the entries to step over.
    run_sql(&db, &dir, "ALTER TABLE deliveries SET (autovacuum_enabled = false)").await;
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
    let stories = [(story_and_readers(&store, now, [SubscriberStatus::Active; 3]).await, 1.0)];
    weekly_readers(&db, &dir, 20000).await;
    let (issue, _) = store.create_issue(&weekly_issue(now, &stories)).await.expect("compose");
    let sent = format!(
        "UPDATE deliveries SET status = 'sent', sent_at = now()
         WHERE id IN (SELECT id FROM deliveries WHERE issue_id = {} ORDER BY id LIMIT 20000)",
        issue.id
    );
    assert_eq!(run_sql(&db, &dir, &sent).await, 20000);
    store.close().await;
    let cursor: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query_scalar("SELECT MAX(id) FROM deliveries WHERE status = 'sent'")
            .fetch_one(&mut conn)
            .await
            .expect("cursor")
    };
    let before = unfinished_index_pages_read(&url, 0).await;

    let store = open(&db, &dir).await;
    let claimed = store
        .claim_deliveries_after(issue.id, now, now + Duration::minutes(5), 10, cursor)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3, "the three rows not sent");
    store.close().await;
    // The 20,000 sent rows' entries fill some 70 pages; from the cursor a
    // claim reads the path down the tree and the page it lands on.
    let read = unfinished_index_pages_read(&url, before + 1).await - before;
    assert!(
        read <= 8,
        "one claim past 20,000 sent rows read {read} pages of the unfinished index"
    );
    finish(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_secret_written_wins() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let (a, created_a) = store.setting_or_init("k", "first").await.expect("init");
        let (b, created_b) = store.setting_or_init("k", "second").await.expect("init");
        assert_eq!(
            (a.as_str(), created_a, b.as_str(), created_b),
            ("first", true, "first", false),
            "{db:?}"
        );
        store.close().await;
        finish(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_state_follows_each_outcome_and_a_new_configured_url() {
    use tidings::collect::Validators;
    use tidings::store::{FetchRecord, FetchUpdate};
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("time");
        let validators = Validators {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Sat, 28 Nov 2026 11:00:00 GMT".into()),
        };
        let record = |config_url: &'static str, fetch_url: &'static str, outcome: FetchRecord<'static>| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.expect("begin");
                let update = FetchUpdate {
                    name: "feed",
                    config_url,
                    fetch_url: fetch_url.into(),
                    outcome,
                    next_fetch_at: Some(now + Duration::hours(1)),
                    now,
                };
                tx.record_fetches(&[update]).await.expect("record");
                tx.commit().await.expect("commit");
                store
                    .source_states()
                    .await
                    .expect("states")
                    .remove("feed")
                    .expect("state")
            }
        };
        let v: &'static Validators = Box::leak(Box::new(validators.clone()));
        // First fetch, moved permanently: the new URL is where to go next.
        let s = record(
            "https://a.example/feed",
            "https://a.example/moved",
            FetchRecord::Ok(v, None),
        )
        .await;
        assert_eq!(
            (s.url.as_str(), s.error_count),
            ("https://a.example/moved", 0),
            "{db:?}"
        );
        assert_eq!(s.validators, validators, "{db:?}");
        // Failures count up and keep what was learnt.
        record(
            "https://a.example/feed",
            "https://a.example/moved",
            FetchRecord::Error("500".into()),
        )
        .await;
        let s = record(
            "https://a.example/feed",
            "https://a.example/moved",
            FetchRecord::Error("500".into()),
        )
        .await;
        assert_eq!(
            (s.error_count, s.url.as_str()),
            (2, "https://a.example/moved"),
            "{db:?}"
        );
        assert_eq!(s.validators, validators, "{db:?}");
        // Another URL in the configuration: a fresh start, even when its
        // first fetch fails — and the next run fetches the new URL.
        let s = record(
            "https://b.example/feed",
            "https://b.example/feed",
            FetchRecord::Error("timeout".into()),
        )
        .await;
        assert_eq!(s.config_url.as_deref(), Some("https://b.example/feed"), "{db:?}");
        assert_eq!((s.url.as_str(), s.error_count), ("https://b.example/feed", 1), "{db:?}");
        assert_eq!(s.validators, Validators::default(), "{db:?}");
        let s = record(
            "https://b.example/feed",
            "https://b.example/feed",
            FetchRecord::NotModified,
        )
        .await;
        assert_eq!(
            (s.error_count, s.next_fetch_at),
            (0, Some(now + Duration::hours(1))),
            "{db:?}"
        );
        // Gone: disabled, not due again, until the configured URL changes.
        let s = record(
            "https://b.example/feed",
            "https://b.example/feed",
            FetchRecord::Disabled("410 Gone".into()),
        )
        .await;
        assert_eq!(
            (s.disabled_reason.as_deref(), s.next_fetch_at),
            (Some("410 Gone"), None),
            "{db:?}"
        );
        let row = store.list_sources().await.expect("list").remove(0);
        assert_eq!(row.last_status.as_deref(), Some("disabled"), "{db:?}");
        assert_eq!(row.last_success_at, Some(now), "{db:?}");
        let s = record(
            "https://c.example/feed",
            "https://c.example/feed",
            FetchRecord::Ok(v, None),
        )
        .await;
        assert_eq!((s.disabled_reason, s.error_count), (None, 0), "{db:?}");
        store.close().await;
        finish(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_index_is_built_from_the_stored_window() {
    use tidings::collect::cluster::{ClusterCandidate, title_keys};
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let told = |key: &str, source: &str, title: &str, hours_ago: i64| NewStory {
            source: source.into(),
            title: title.into(),
            ..story(key, hours_ago)
        };
        let ids = store
            .insert_stories(vec![
                told("old", "A", "Kubernetes breach disclosed by cloud vendor", 24 * 30),
                told("k1", "A", "Kubernetes breach disclosed by cloud vendor", 5),
                told("p1", "A", "Ransomware gang hits major port operator in Rotterdam", 4),
                told("p2", "B", "Ransomware gang hits major port operator, Rotterdam", 3),
            ])
            .await
            .expect("insert");
        let [Some(_old), Some(k1), Some(p1), Some(p2)] = ids[..] else {
            panic!("four new stories: {ids:?} ({db:?})")
        };
        let mut tx = store.begin().await.expect("begin");
        tx.set_clusters(&[(p1, p1), (p2, p1)]).await.expect("clusters");
        tx.commit().await.expect("commit");

        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("time");
        let mut tx = store.begin().await.expect("begin");
        let mut index = tidings::collect::cluster::load_index(&mut tx, now - Duration::days(7))
            .await
            .expect("index");
        drop(tx);
        assert_eq!(index.len(), 3, "the month-old story is outside the window ({db:?})");
        let new = |id: i64, source: &str, link: &str, title: &str| ClusterCandidate {
            id,
            source: source.into(),
            link: link.into(),
            keys: title_keys(title),
            cluster_id: None,
        };
        let pairs = index.add(vec![
            // Another source's rewording of the windowed Kubernetes story.
            new(
                p2 + 1,
                "C",
                "https://c.example/k",
                "Cloud vendor discloses Kubernetes breach",
            ),
            // The port story again, by link: it joins the stored cluster.
            new(p2 + 2, "C", "https://example.com/p2", "Harbour systems down"),
            new(p2 + 3, "C", "https://c.example/g", "Gardening tips for the office"),
        ]);
        assert_eq!(pairs, [(k1, k1), (p2 + 1, k1), (p2 + 2, p1)], "{db:?}");
        store.close().await;
        finish(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_reads_first_still_writes_when_another_writer_came_in_between() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("time");
        // Reads first, as the collector does (the cluster index)...
        let mut conn = store.connection().await.expect("connection");
        let mut tx = conn.begin().await.expect("begin");
        tidings::collect::cluster::load_index(&mut tx, now - Duration::days(7))
            .await
            .expect("index");
        // ...while another writer comes in. On SQLite a deferred BEGIN would
        // let it commit first and then refuse this transaction's write
        // (SQLITE_BUSY_SNAPSHOT); an immediate one makes it wait instead.
        let other = store.clone();
        let writer = tokio::spawn(async move { other.insert_stories(vec![story("other", 1)]).await });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tx.insert_stories(vec![story("mine", 1)])
            .await
            .expect("write after the read");
        tx.commit().await.expect("commit");
        let theirs = writer.await.expect("join").expect("the other writer's insert");
        assert_eq!(theirs.iter().flatten().count(), 1, "{db:?}");
        // The held connection runs the next transaction and reads too.
        let states = conn.source_states().await.expect("states");
        assert!(states.is_empty(), "{db:?}");
        let mut tx = conn.begin().await.expect("begin again");
        assert_eq!(
            tidings::collect::cluster::load_index(&mut tx, now - Duration::days(7))
                .await
                .expect("index")
                .len(),
            2,
            "{db:?}"
        );
        drop(tx);
        drop(conn);
        store.close().await;
        finish(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_confirm_once_never_over_a_later_unsubscribe_and_expire() {
    use tidings::store::{AddOutcome, Confirmation};
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).single().expect("time");
        let at = |h: i64| t0 + Duration::hours(h);
        let address = |a: &str| EmailAddress::parse(a).expect("address");
        let weekly = vec!["weekly".to_string()];
        let add = |email: &'static str| {
            let store = &store;
            async move {
                match store
                    .add_subscriber(&address(email), None, SubscriberStatus::Pending, &[], t0)
                    .await
                    .expect("add")
                {
                    AddOutcome::Added(id) | AddOutcome::Updated(id, _) => id,
                }
            }
        };

        // The confirmed sign-up's name and editions win, once.
        let ada = add("ada@example.com").await;
        let strangers = store
            .create_signup(ada, Some("Stranger"), &[], at(1))
            .await
            .expect("signup");
        let own = store
            .create_signup(ada, Some("Ada"), &weekly, at(2))
            .await
            .expect("signup");
        assert_eq!(
            store.confirm_signup(own, at(3)).await.expect("confirm"),
            Confirmation::Activated
        );
        assert_eq!(
            store.confirm_signup(own, at(4)).await.expect("confirm"),
            Confirmation::AlreadyUsed
        );
        assert_eq!(
            store.confirm_signup(strangers, at(4)).await.expect("confirm"),
            Confirmation::AlreadyActive
        );
        let s = store.subscriber(ada).await.expect("get").expect("known");
        assert_eq!(
            (s.name.as_deref(), s.editions.clone(), s.status),
            (Some("Ada"), weekly.clone(), SubscriberStatus::Active)
        );

        // A sign-up made before an unsubscribe does not undo it; one made
        // after does subscribe again.
        let bob = add("bob@example.com").await;
        let early = store.create_signup(bob, None, &weekly, at(1)).await.expect("signup");
        store
            .set_subscriber_status(bob, SubscriberStatus::Unsubscribed, "test", at(2))
            .await
            .expect("unsubscribe");
        assert_eq!(
            store.confirm_signup(early, at(3)).await.expect("confirm"),
            Confirmation::UnsubscribedSince
        );
        let late = store.create_signup(bob, None, &weekly, at(4)).await.expect("signup");
        assert_eq!(
            store.confirm_signup(late, at(5)).await.expect("confirm"),
            Confirmation::Activated
        );

        // Unconfirmed sign-ups and their pending subscribers expire; a
        // pending address with a recent sign-up stays.
        let old = add("old@example.com").await;
        store.create_signup(old, None, &weekly, at(1)).await.expect("signup");
        let recent = add("recent@example.com").await;
        store
            .create_signup(recent, None, &weekly, at(24 * 9))
            .await
            .expect("signup");
        let (subscribers, signups) = store.expire_signups(at(24 * 7)).await.expect("expire");
        assert_eq!(subscribers, 1, "{db:?}");
        assert!(signups >= 1);
        assert!(store.subscriber(old).await.expect("get").is_none());
        assert!(store.subscriber(recent).await.expect("get").is_some());
        assert!(
            store.subscriber(ada).await.expect("get").is_some(),
            "active subscribers never expire"
        );
        assert_eq!(
            store.confirm_signup(strangers, at(200)).await.expect("confirm"),
            Confirmation::Gone
        );
        store.close().await;
        finish(db).await;
    }
}

/// An issue deleted by hand (tidings never deletes one) takes its
/// deliveries along: on SQLite by the foreign key, on PostgreSQL (where the
/// compose no longer checks that key) by a trigger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_issue_takes_its_deliveries() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
        let issue = issue_to_three_readers(&store, now).await;
        assert_eq!(store.delivery_counts(issue.id, now).await.expect("counts").total(), 3);
        let deleted = run_sql(&db, &dir, &format!("DELETE FROM issues WHERE id = {}", issue.id)).await;
        assert_eq!(deleted, 1, "{db:?}");
        assert_eq!(
            run_sql(
                &db,
                &dir,
                &format!("DELETE FROM deliveries WHERE issue_id = {}", issue.id)
            )
            .await,
            0,
            "the issue's deliveries went with it: {db:?}"
        );
        store.close().await;
        finish(db).await;
    }
}

/// A compose writes the deliveries of readers in ranges of ids: every
/// active reader of the edition gets exactly one, on both sides of each
/// range's edge and in the last range, and nobody else does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_reaches_every_reader_across_its_id_ranges() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
        let stories = [(story_and_readers(&store, now, [SubscriberStatus::Active; 3]).await, 1.0)];
        // Ranges start at the lowest id (1): 1–20000, 20001–40000, …
        for (id, status, edition) in [
            (20_000, SubscriberStatus::Active, "weekly"),
            (20_001, SubscriberStatus::Active, "weekly"),
            (40_000, SubscriberStatus::Unsubscribed, "weekly"),
            (50_000, SubscriberStatus::Active, "daily"),
            (60_001, SubscriberStatus::Active, "weekly"),
        ] {
            let email = EmailAddress::parse(&format!("r{id}@example.com")).expect("valid");
            store.add_subscriber(&email, None, status, &[], now).await.expect("add");
            let moved = run_sql(
                &db,
                &dir,
                &format!("UPDATE subscribers SET id = {id} WHERE email = '{}'", email.as_str()),
            )
            .await;
            assert_eq!(moved, 1);
            run_sql(
                &db,
                &dir,
                &format!("INSERT INTO subscriptions (subscriber_id, edition) VALUES ({id}, '{edition}')"),
            )
            .await;
        }
        let (issue, _) = store.create_issue(&weekly_issue(now, &stories)).await.expect("compose");
        assert_eq!(
            store.delivery_counts(issue.id, now).await.expect("counts").pending,
            6,
            "three readers of the first range and 20000, 20001, 60001: {db:?}"
        );
        let mut readers = Vec::new();
        let mut after = 0;
        loop {
            let batch = store
                .claim_deliveries_after(issue.id, now, now + Duration::minutes(5), 4, after)
                .await
                .expect("claim");
            let Some(last) = batch.last() else { break };
            after = last.id;
            readers.extend(batch.iter().map(|d| d.subscriber_id).filter(|id| *id >= 20_000));
        }
        readers.sort();
        assert_eq!(readers, vec![20_000, 20_001, 60_001], "{db:?}");
        store.close().await;
        finish(db).await;
    }
}

/// A reader who leaves while an issue goes out — on the web page, on the
/// preferences page, by a complaint — is not mailed the rest of it: their
/// unfinished delivery is withdrawn, a retry of one in flight does not
/// bring it back, and coming back later does not either. A row already
/// being sent when the complaint came is recorded as sent, as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_who_leaves_while_an_issue_goes_out_is_not_mailed_it() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
        let issue = issue_to_three_readers(&store, now).await;
        let lease = now + Duration::minutes(5);
        let in_flight = store
            .claim_deliveries_after(issue.id, now, lease, 1, 0)
            .await
            .expect("claim")
            .remove(0);
        let mut others = Vec::new();
        let mut address_of = std::collections::HashMap::new();
        for email in ["a@example.com", "b@example.com", "c@example.com"] {
            let email = EmailAddress::parse(email).expect("valid");
            let reader = store.subscriber_by_email(&email).await.expect("read").expect("known");
            address_of.insert(reader.id, email.as_str().to_string());
            if reader.id != in_flight.subscriber_id {
                others.push(reader.id);
            }
        }
        let [drops_the_edition, complains] = others[..] else {
            panic!("three readers: {others:?}");
        };

        assert!(
            store
                .set_subscriber_status(
                    in_flight.subscriber_id,
                    SubscriberStatus::Unsubscribed,
                    "unsubscribed on the web page",
                    now
                )
                .await
                .expect("unsubscribe")
        );
        store
            .update_preferences(
                drops_the_edition,
                Some("Name"),
                &["daily".to_string()],
                SubscriberStatus::Active,
                now,
            )
            .await
            .expect("preferences");
        let counts = store.delivery_counts(issue.id, now).await.expect("counts");
        assert_eq!(
            (counts.pending, counts.sending, counts.withdrawn, counts.total()),
            (1, 0, 2, 3),
            "{db:?}"
        );

        // The message in flight failed for now: it is not tried again.
        store
            .record_outcomes(&[DeliveryOutcome::Retry {
                id: in_flight.id,
                reply: "451 later".into(),
                at: now + Duration::seconds(30),
            }])
            .await
            .expect("retry");
        let later = now + Duration::minutes(1);
        let rest = store
            .claim_deliveries_after(issue.id, later, later + Duration::minutes(5), 10, 0)
            .await
            .expect("claim");
        assert_eq!(
            rest.iter().map(|d| d.subscriber_id).collect::<Vec<_>>(),
            vec![complains],
            "{db:?}"
        );

        let delivery = DeliveryRef {
            delivery_id: rest[0].id,
            issue_id: issue.id,
            subscriber_id: complains,
            email: rest[0].email.as_str().to_string(),
        };
        let recorded = store
            .record_inbound(
                &NewInboundEvent {
                    message_key: "complaint-1",
                    channel: Channel::Smtp,
                    kind: InboundKind::Complaint,
                    delivery: Some(&delivery),
                    subscriber_id: None,
                    status_code: None,
                    detail: "abuse report",
                    raw: None,
                    received_at: later,
                },
                SoftBouncePolicy {
                    limit: 3,
                    window: Duration::days(30),
                },
            )
            .await
            .expect("complaint");
        assert!(matches!(recorded, Recorded::Event { .. }), "{recorded:?}");
        assert_eq!(
            store.delivery_counts(issue.id, later).await.expect("counts").withdrawn,
            3
        );
        // Its message was already on its way: what happened is recorded.
        store
            .record_outcomes(&[DeliveryOutcome::Sent {
                id: rest[0].id,
                reply: "250 ok".into(),
                at: later,
            }])
            .await
            .expect("sent");

        // Back on the list: the next issue, not the rest of this one.
        store
            .set_subscriber_status(in_flight.subscriber_id, SubscriberStatus::Active, "re-added", later)
            .await
            .expect("resubscribe");
        let counts = store.delivery_counts(issue.id, later).await.expect("counts");
        assert_eq!((counts.pending, counts.sent, counts.withdrawn), (0, 1, 2), "{db:?}");
        assert!(
            store
                .claim_deliveries_after(issue.id, later, later + Duration::minutes(5), 10, 0)
                .await
                .expect("claim")
                .is_empty(),
            "{db:?}"
        );
        let mut expected = vec![
            (
                address_of[&in_flight.subscriber_id].clone(),
                "not sent: unsubscribed on the web page".to_string(),
            ),
            (
                address_of[&drops_the_edition].clone(),
                "not sent: changed on the preferences page".to_string(),
            ),
        ];
        expected.sort();
        assert_eq!(
            store.withdrawn_deliveries(issue.id).await.expect("withdrawn"),
            expected,
            "{db:?}"
        );
        store.close().await;
        finish(db).await;
    }
}

/// A deleted reader takes their deliveries along. On PostgreSQL (where
/// deliveries have no foreign key to their reader) a deletion and a reader
/// leaving both wait for a compose under way — here a transaction holding
/// the compose's lock and writing, as a compose does, a delivery to each
/// of them — and then find its rows: none is left for the deleted reader,
/// and the one who left has theirs withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_deleted_or_leaving_wait_for_a_compose_and_find_its_rows() {
    for db in databases().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&db, &dir).await;
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time");
        let issue = issue_to_three_readers(&store, now).await;
        let deleted = EmailAddress::parse("b@example.com").expect("valid");
        let leaving = store
            .subscriber_by_email(&EmailAddress::parse("c@example.com").expect("valid"))
            .await
            .expect("read")
            .expect("known")
            .id;
        let compose_under_way = match &db {
            Db::Sqlite => None,
            Db::Postgres(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
                sqlx::query("BEGIN").execute(&mut conn).await.expect("begin");
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(tidings::store::RECIPIENTS_LOCK)
                    .execute(&mut conn)
                    .await
                    .expect("lock");
                for sql in [
                    "INSERT INTO issues (edition, slot_at, composed_at, subject, content)
                     VALUES ('weekly', now(), now(), 'Next', '{}')",
                    "INSERT INTO deliveries (issue_id, subscriber_id, email, name, status, attempts, next_attempt_at, message_id)
                     SELECT i.id, s.id, s.email, s.name, 'pending', 0, now(), '<next.' || CAST(s.id AS TEXT) || '@example.com>'
                     FROM issues i, subscribers s WHERE i.subject = 'Next' AND s.email IN ('b@example.com', 'c@example.com')",
                ] {
                    sqlx::query(sql).execute(&mut conn).await.expect("compose by hand");
                }
                Some(conn)
            }
        };
        let erasure = {
            let store = store.clone();
            let reader = deleted.clone();
            tokio::spawn(async move { store.remove_subscriber(&reader).await })
        };
        let leaving_task = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set_subscriber_status(
                        leaving,
                        SubscriberStatus::Unsubscribed,
                        "unsubscribed on the web page",
                        now,
                    )
                    .await
            })
        };
        if let (Some(mut conn), Db::Postgres(url)) = (compose_under_way, &db) {
            use sqlx::Connection;
            let mut watcher = sqlx::PgConnection::connect(url).await.expect("connect");
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut poll = tokio::time::interval(std::time::Duration::from_millis(10));
            loop {
                poll.tick().await;
                // A 64-bit advisory key shows as its high and low halves.
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                     AND classid::BIGINT = $1 >> 32 AND objid::BIGINT = $1 & 4294967295",
                )
                .bind(tidings::store::RECIPIENTS_LOCK)
                .fetch_one(&mut watcher)
                .await
                .expect("locks");
                if waiting == 2 {
                    break;
                }
                assert!(!erasure.is_finished(), "the erasure did not wait for the compose");
                assert!(
                    !leaving_task.is_finished(),
                    "the reader left without waiting for the compose"
                );
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the erasure and the reader leaving never both asked for the lock"
                );
            }
            assert!(!erasure.is_finished() && !leaving_task.is_finished());
            sqlx::query("COMMIT").execute(&mut conn).await.expect("commit");
        }
        assert!(erasure.await.expect("task").expect("remove"), "{db:?}");
        assert!(leaving_task.await.expect("task").expect("leave"), "{db:?}");
        let counts = store.delivery_counts(issue.id, now).await.expect("counts");
        assert_eq!(
            (counts.total(), counts.withdrawn),
            (2, 1),
            "the deleted reader's delivery went with them, the leaving reader's was withdrawn: {db:?}"
        );
        if let Db::Postgres(url) = &db {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            let next: Vec<(i64, String)> = sqlx::query_as(
                "SELECT d.subscriber_id, d.status FROM deliveries d JOIN issues i ON i.id = d.issue_id WHERE i.subject = 'Next'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("next issue");
            assert_eq!(
                next,
                vec![(leaving, "withdrawn".to_string())],
                "the compose's rows: none for the deleted reader, the leaving one's withdrawn"
            );
        }
        assert!(
            !store.remove_subscriber(&deleted).await.expect("remove again"),
            "{db:?}"
        );
        store.close().await;
        finish(db).await;
    }
}
