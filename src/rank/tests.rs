//! Table-driven tests of scoring, decay, caps, sections, clusters and
//! overrides, all with a fixed clock.

use super::*;
use crate::domain::TaggedTag;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("time")
}

fn story(id: i64, source: &str, hours_old: i64, tags: &[&str]) -> StoredStory {
    StoredStory {
        id,
        source: source.into(),
        title: format!("story {id}"),
        link: format!("https://example.com/{id}"),
        summary_html: String::new(),
        summary_text: String::new(),
        content: None,
        published_at: now() - Duration::hours(hours_old),
        collected_at: now(),
        cluster_id: None,
        tags: tags
            .iter()
            .map(|t| TaggedTag {
                tag: t.to_string(),
                origin: TagOrigin::Source,
            })
            .collect(),
    }
}

fn security() -> Audience {
    Audience::with_weights(
        "security",
        "Security",
        BTreeMap::from([("security".into(), 3.0), ("cloud".into(), 2.0), ("policy".into(), 1.0)]),
    )
}

fn policy(window_days: i64, limit: usize) -> RankPolicy {
    RankPolicy::for_window_days(window_days, limit, &security())
}

fn ids(selection: &Selection<'_>) -> Vec<i64> {
    selection.stories().map(|r| r.story.id).collect()
}

fn verdict<'a>(selection: &'a Selection<'_>, id: i64) -> &'a Verdict {
    &selection
        .considered
        .iter()
        .find(|c| c.story.id == id)
        .unwrap_or_else(|| panic!("story {id} not considered"))
        .verdict
}

#[test]
fn score_table() {
    // (case, tags, source, hours old, other sources in cluster, audience tweak, expected score)
    type Tweak = fn(&mut Audience);
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static str,
        i64,
        usize,
        Tweak,
        f64,
    );
    let none: Tweak = |_| {};
    let cases: &[Case] = &[
        ("tags add up", &["security", "cloud", "other"], "A", 0, 0, none, 5.0),
        ("one half-life halves", &["security"], "A", 48, 0, none, 1.5),
        ("two half-lives quarter", &["security"], "A", 96, 0, none, 0.75),
        ("global source weight", &["security"], "heavy", 0, 0, none, 6.0),
        (
            "audience source weight wins",
            &["security"],
            "heavy",
            0,
            0,
            |a| {
                a.source_weights.insert("heavy".into(), 0.5);
            },
            1.5,
        ),
        (
            "audience half-life",
            &["security"],
            "A",
            24,
            0,
            |a| {
                a.half_life = Some(Duration::hours(24));
            },
            1.5,
        ),
        ("one other source: +25 %", &["security"], "A", 0, 1, none, 3.75),
        ("bonus capped at +50 %", &["security"], "A", 0, 9, none, 4.5),
        (
            "cap configurable",
            &["security"],
            "A",
            0,
            9,
            |a| {
                a.cluster_bonus_max = 1.0;
            },
            6.0,
        ),
    ];
    let weights = HashMap::from([("heavy".to_string(), 2.0)]);
    for (case, tags, source, hours, others, tweak, want) in cases {
        let mut audience = security();
        tweak(&mut audience);
        // A 6-day window: the half-life is 2 days unless the audience sets one.
        let policy = RankPolicy::for_window_days(6, 10, &audience);
        let s = story(1, source, *hours, tags);
        let (got, _) = score(&s, &audience, &weights, &policy, *others, now()).expect(case);
        assert!((got - want).abs() < 1e-9, "{case}: {got} ≠ {want}");
    }
}

#[test]
fn stories_without_a_score_say_why() {
    let mut audience = security();
    audience.exclude_tags.insert("sponsored".into());
    let policy = policy(7, 10);
    let weights = HashMap::from([("muted".to_string(), 0.0)]);
    let cases: &[(StoredStory, &str)] = &[
        (story(1, "A", 24 * 8, &["security"]), "published outside the window"),
        (story(2, "A", -3, &["security"]), "published outside the window"),
        (
            story(3, "A", 1, &["security", "sponsored"]),
            "tag \"sponsored\" is excluded",
        ),
        (story(4, "A", 1, &["gardening"]), "none of its tags"),
        (story(5, "muted", 1, &["security"]), "source weight of muted is 0"),
    ];
    for (s, want) in cases {
        let err = score(s, &audience, &weights, &policy, 0, now()).expect_err(want);
        assert!(err.starts_with(want), "story {}: {err}", s.id);
    }
}

#[test]
fn order_is_score_then_newer_then_id_and_the_limit_holds() {
    let stories = vec![
        story(1, "A", 10, &["cloud"]),
        story(2, "B", 10, &["security"]),
        story(3, "C", 5, &["unrelated"]),
        story(5, "D", 10, &["security"]),
        story(6, "E", 1, &["cloud"]),
    ];
    let all = select(
        &stories,
        &security(),
        &HashMap::new(),
        &policy(7, 10),
        &Overrides::default(),
        now(),
    );
    // 2 and 5 tie exactly: lower id first.
    assert_eq!(ids(&all), [2, 5, 6, 1]);
    let two = select(
        &stories,
        &security(),
        &HashMap::new(),
        &policy(7, 2),
        &Overrides::default(),
        now(),
    );
    assert_eq!(ids(&two), [2, 5]);
    assert_eq!(
        verdict(&two, 6),
        &Verdict::LeftOut("the issue is full (max_stories = 2)".into())
    );
}

#[test]
fn at_most_max_per_source_and_the_next_best_fill_in() {
    let mut stories: Vec<StoredStory> = (1..=5).map(|i| story(i, "Loud", i, &["security"])).collect();
    stories.push(story(10, "Quiet", 30, &["cloud"]));
    stories.push(story(11, "Other", 40, &["cloud"]));
    let mut p = policy(7, 5);
    p.max_per_source = 3;
    let selection = select(&stories, &security(), &HashMap::new(), &p, &Overrides::default(), now());
    assert_eq!(ids(&selection), [1, 2, 3, 10, 11]);
    assert_eq!(
        verdict(&selection, 4),
        &Verdict::LeftOut("already 3 stories from Loud (max_per_source = 3)".into())
    );
}

#[test]
fn a_cluster_takes_one_place_gets_a_capped_bonus_and_lists_the_others() {
    let mut stories = vec![
        story(1, "A", 10, &["security"]),
        story(2, "B", 5, &["security"]),
        story(3, "C", 5, &[]),
        story(4, "D", 1, &["security"]),
    ];
    for s in &mut stories[..3] {
        s.cluster_id = Some(1);
    }
    let selection = select(
        &stories,
        &security(),
        &HashMap::new(),
        &policy(7, 10),
        &Overrides::default(),
        now(),
    );
    // Story 2 (two other sources: +50 %) outranks the fresher unclustered 4.
    assert_eq!(ids(&selection), [2, 4]);
    let first = &selection.sections[0].stories[0];
    assert_eq!(first.parts.as_ref().map(|p| p.other_sources), Some(2));
    let also: Vec<i64> = first.also.iter().map(|s| s.id).collect();
    assert_eq!(also, [1, 3], "even a zero-score member is listed");
    assert_eq!(
        verdict(&selection, 1),
        &Verdict::LeftOut("the same story as #2 (one entry per cluster)".into())
    );
}

fn sectioned() -> RankPolicy {
    let mut p = policy(7, 10);
    p.sections = vec![
        Section {
            title: "Security".into(),
            tags: vec!["security".into()],
            max: Some(2),
        },
        Section {
            title: "Cloud".into(),
            tags: vec!["cloud".into()],
            max: None,
        },
    ];
    p
}

#[test]
fn sections_take_the_highest_weighted_tag_and_have_limits() {
    let stories = vec![
        story(1, "A", 1, &["cloud", "security"]), // security weighs more
        story(2, "B", 2, &["security"]),
        story(3, "C", 3, &["security"]), // Security is full by now
        story(4, "D", 4, &["cloud"]),
        story(5, "E", 5, &["policy"]), // no section, no catch-all
    ];
    let selection = select(
        &stories,
        &security(),
        &HashMap::new(),
        &sectioned(),
        &Overrides::default(),
        now(),
    );
    let layout: Vec<(&str, Vec<i64>)> = selection
        .sections
        .iter()
        .map(|s| (s.title.as_str(), s.stories.iter().map(|r| r.story.id).collect()))
        .collect();
    assert_eq!(layout, [("Security", vec![1, 2]), ("Cloud", vec![4])]);
    assert_eq!(
        verdict(&selection, 3),
        &Verdict::LeftOut("section \"Security\" is full (max = 2)".into())
    );
    assert_eq!(
        verdict(&selection, 5),
        &Verdict::LeftOut("no section takes any of its tags".into())
    );

    let mut with_rest = sectioned();
    with_rest.sections.push(Section {
        title: "Also this week".into(),
        tags: Vec::new(),
        max: None,
    });
    let selection = select(
        &stories,
        &security(),
        &HashMap::new(),
        &with_rest,
        &Overrides::default(),
        now(),
    );
    assert_eq!(
        selection.sections.last().map(|s| s.title.as_str()),
        Some("Also this week")
    );
    assert_eq!(ids(&selection), [1, 2, 4, 5]);
    assert_eq!(
        verdict(&selection, 5),
        &Verdict::Kept {
            section: "Also this week".into(),
            position: 4
        }
    );
}

#[test]
fn pins_and_exclusions_override_the_ranking() {
    let stories = vec![
        story(1, "A", 1, &["security"]),
        story(2, "B", 2, &["security"]),
        story(3, "C", 3, &["security"]),
        story(4, "D", 4, &["gardening"]),      // scores nothing for this audience
        story(5, "E", 24 * 30, &["security"]), // outside the window
    ];
    let overrides = Overrides {
        pins: vec![
            Pin {
                story_id: 4,
                position: Some(1),
            },
            Pin {
                story_id: 3,
                position: None,
            },
        ],
        excluded: BTreeSet::from([1]),
        note: Some("Hello".into()),
    };
    let selection = select(&stories, &security(), &HashMap::new(), &policy(7, 3), &overrides, now());
    // 4 at the top as asked; 3 where its score puts it; 1 gone; the pins
    // fill two of the three places.
    assert_eq!(ids(&selection), [4, 2, 3]);
    assert_eq!(
        verdict(&selection, 1),
        &Verdict::LeftOut("excluded by the editor".into())
    );
    assert!(selection.sections[0].stories[0].pinned);

    // A pin with a position past the end goes last; an excluded pin is out.
    let overrides = Overrides {
        pins: vec![Pin {
            story_id: 3,
            position: Some(9),
        }],
        excluded: BTreeSet::new(),
        note: None,
    };
    let selection = select(
        &stories,
        &security(),
        &HashMap::new(),
        &policy(7, 10),
        &overrides,
        now(),
    );
    assert_eq!(ids(&selection), [1, 2, 3]);
}

#[test]
fn the_same_input_gives_the_same_selection_in_any_order() {
    let mut stories: Vec<StoredStory> = (1..=30)
        .map(|i| {
            let tags: &[&str] = match i % 3 {
                0 => &["security"],
                1 => &["cloud"],
                _ => &["policy", "cloud"],
            };
            story(i, &format!("S{}", i % 4), i % 7, tags)
        })
        .collect();
    let p = sectioned();
    let first = ids(&select(
        &stories,
        &security(),
        &HashMap::new(),
        &p,
        &Overrides::default(),
        now(),
    ));
    stories.reverse();
    let second = ids(&select(
        &stories,
        &security(),
        &HashMap::new(),
        &p,
        &Overrides::default(),
        now(),
    ));
    assert_eq!(first, second);
    assert!(!first.is_empty());
}

#[test]
fn who_should_care_uses_each_audiences_threshold() {
    let mut policy_desk = Audience::with_weights("policy", "Policy", BTreeMap::from([("policy".into(), 1.0)]));
    let mut cloud = Audience::with_weights("cloud", "Cloud", BTreeMap::from([("cloud".into(), 1.0)]));
    cloud.exclude_tags.insert("policy".into());
    let s = story(1, "A", 1, &["cloud", "policy"]);
    let names = |audiences: [&Audience; 3]| -> Vec<String> {
        audiences_for(&s, audiences, &HashMap::new())
            .iter()
            .map(|a| a.name.clone())
            .collect()
    };
    assert_eq!(names([&security(), &policy_desk, &cloud]), ["security", "policy"]);
    policy_desk.threshold = 1.0; // relevance 1.0 is not above 1.0
    assert_eq!(names([&security(), &policy_desk, &cloud]), ["security"]);
}
