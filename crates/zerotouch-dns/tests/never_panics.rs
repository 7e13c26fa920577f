#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Whatever arrives from the network or the store, the framing returns an error instead of
//! panicking: query names (arbitrary, and valid ones mutated), TXT strings, stored tunnel
//! records, and the answers a tunnel is handed. Where a mutated name still decodes, it is the
//! name the binding writes for what it decodes to (one meaning, one name, up to case).

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_core::Instant;
use zerotouch_dns::*;

fn zone() -> Zone {
    Zone::new("zt.example.com").unwrap()
}

/// A valid query of any kind.
fn valid_query() -> impl Strategy<Value = Query> {
    (
        0usize..5,
        any::<[u8; 5]>(),
        any::<[u8; 5]>(),
        (0u8..16, 0u8..16, any::<u16>(), 32u8..=255),
        proptest::collection::vec(any::<u8>(), 1..=128),
    )
        .prop_map(
            |(kind, tunnel, cookie, (message, attempt, position, units), data)| {
                let kind = [
                    QueryKind::Cookie,
                    QueryKind::Data,
                    QueryKind::LastData,
                    QueryKind::Poll,
                    QueryKind::Probe,
                ][kind];
                let carries_data = matches!(kind, QueryKind::Data | QueryKind::LastData);
                let data = if carries_data { data } else { vec![] };
                Query {
                    header: QueryHeader {
                        kind,
                        tunnel: TunnelId(tunnel),
                        cookie: if kind == QueryKind::Cookie {
                            Cookie::default()
                        } else {
                            Cookie(cookie)
                        },
                        message,
                        attempt,
                        position: if carries_data || kind == QueryKind::Poll {
                            position
                        } else {
                            0
                        },
                        limit: AnswerLimit::from_bytes(usize::from(units) * 16).unwrap(),
                    },
                    data,
                }
            },
        )
}

/// One edit of a name.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    Upper(usize),
    /// Cut the name at a dot (drop the outer labels).
    DropOuter(usize),
    /// Repeat the outermost label.
    RepeatOuter,
    TrailingDot,
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        4 => proptest::char::ranges(vec!['a'..='z', '2'..='7'].into()),
        2 => proptest::sample::select(vec!['.', '0', '1', '8', '9', '=', '-', 'A', 'Z', 'é', '\0']),
        1 => any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), c).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Upper),
        any::<usize>().prop_map(Edit::DropOuter),
        Just(Edit::RepeatOuter),
        Just(Edit::TrailingDot),
    ]
}

fn apply(name: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let at = |i: usize, n: usize| if n == 0 { 0 } else { i % n };
    match *edit {
        Edit::Insert(i, c) => chars.insert(at(i, chars.len() + 1), c),
        Edit::Delete(i) if !chars.is_empty() => {
            chars.remove(at(i, chars.len()));
        }
        Edit::Replace(i, c) if !chars.is_empty() => {
            let i = at(i, chars.len());
            chars[i] = c;
        }
        Edit::Upper(i) if !chars.is_empty() => {
            let i = at(i, chars.len());
            chars[i] = chars[i].to_ascii_uppercase();
        }
        Edit::DropOuter(i) => {
            let dots: Vec<usize> = (0..chars.len()).filter(|&j| chars[j] == '.').collect();
            if !dots.is_empty() {
                let cut = dots[at(i, dots.len())];
                chars.drain(..=cut);
            }
        }
        Edit::RepeatOuter => {
            let outer: String = chars.iter().take_while(|&&c| c != '.').collect();
            return format!("{outer}.{name}");
        }
        Edit::TrailingDot => chars.push('.'),
        _ => {}
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classify_never_panics_on_arbitrary_strings(name in ".{0,300}") {
        let _ = Query::classify(&name, &zone());
    }

    /// Names made of the base32 alphabet, dots and the zone, to get past the zone check.
    #[test]
    fn classify_never_panics_on_names_under_the_zone(
        below in "[a-zA-Z2-7.=0-9]{0,250}",
    ) {
        let zone = zone();
        let name = format!("{below}.zt.example.com");
        if let Ok(NameKind::Query(q)) = Query::classify(&name, &zone) {
            prop_assert!(q.to_name(&zone).unwrap().eq_ignore_ascii_case(&name));
        }
    }

    /// Valid names with edits: never a panic, and whatever still decodes is the name the
    /// binding writes for it, up to case (no second spelling of a query).
    #[test]
    fn classify_never_panics_on_mutated_valid_names(
        q in valid_query(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let zone = zone();
        let mut name = q.to_name(&zone).unwrap();
        for e in &edits {
            name = apply(&name, e);
        }
        match Query::classify(&name, &zone) {
            Ok(NameKind::Query(decoded)) => {
                let written = decoded.to_name(&zone).unwrap();
                let seen = name.strip_suffix('.').unwrap_or(&name);
                prop_assert!(written.eq_ignore_ascii_case(seen), "{} decodes as {}", name, written);
            }
            Ok(NameKind::Apex | NameKind::Intermediate) | Err(_) => {}
        }
    }

    #[test]
    fn from_strings_never_panics(
        strings in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::vec(any::<u8>(), 255..=255),
            ],
            0..6,
        ),
    ) {
        if let Ok(p) = AnswerPayload::from_strings(&strings) {
            prop_assert_eq!(AnswerPayload::from_strings(&p.to_strings()), Ok(p));
        }
    }

    #[test]
    fn tunnel_record_from_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        valid_version in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if valid_version && let Some(v) = bytes.first_mut() {
            *v = 1;
        }
        if let Ok(r) = TunnelRecord::from_bytes(&bytes) {
            prop_assert_eq!(TunnelRecord::from_bytes(&r.to_bytes()), Ok(r));
        }
    }

    /// A tunnel handed arbitrary replies, to its outstanding query or to other names, between
    /// timeouts, polls and new messages, never panics, and stays a tunnel that either has
    /// something to do or says it is idle.
    #[test]
    fn handle_answer_never_panics_on_arbitrary_replies(
        edns in any::<bool>(),
        len in 1usize..3000,
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(len as u64);
        let mut tunnel = TunnelClient::new(
            TunnelConfig {
                edns_limit: edns.then(|| AnswerLimit::from_bytes(1232).unwrap()),
                ..TunnelConfig::new(zone())
            },
            &mut rng,
        );
        tunnel.send(&vec![7; len], &mut rng).unwrap();
        let mut now = 0u64;
        let mut outstanding: Option<OutgoingQuery> = None;
        for step in steps {
            now += step.advance_ms;
            tunnel.handle_timeout(Instant(now));
            if let Some(q) = tunnel.poll_query(Instant(now)) {
                outstanding = Some(q);
            }
            let name = match (&outstanding, step.to_other_name) {
                (Some(q), false) => q.name.to_ascii_uppercase(),
                _ => "x.zt.example.com".to_owned(),
            };
            let _ = tunnel.handle_answer(Instant(now), &name, step.reply);
            while let Some(_event) = tunnel.poll_event() {}
            if !tunnel.is_busy() {
                prop_assert_eq!(tunnel.poll_timeout(), None);
                tunnel.send(&vec![8; len], &mut rng).unwrap();
            } else {
                prop_assert!(tunnel.poll_timeout().is_some());
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Step {
    advance_ms: u64,
    to_other_name: bool,
    reply: Reply,
}

fn step() -> impl Strategy<Value = Step> {
    let statuses: Vec<u8> = (0..=255u8)
        .filter(|&b| AnswerStatus::from_u8(b).is_ok())
        .collect();
    let payload = (
        proptest::sample::select(statuses),
        prop_oneof![0u16..8, 0u16..3100, any::<u16>()],
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..1200),
        ],
    )
        .prop_map(|(status, length, body)| {
            Reply::Txt(
                AnswerPayload {
                    status: AnswerStatus::from_u8(status).unwrap(),
                    length,
                    body,
                }
                .to_strings(),
            )
        });
    // Answers the tunnel takes, so it moves on to chunks, polls and the probe.
    let plausible = prop_oneof![
        Just(AnswerPayload {
            status: AnswerStatus::Cookie,
            length: 0,
            body: vec![1; 5],
        }),
        Just(AnswerPayload::status(AnswerStatus::Ack, 0)),
        (1u16..3000, 1usize..400).prop_map(|(total, n)| AnswerPayload {
            status: AnswerStatus::Data,
            length: total,
            body: vec![2; n.min(usize::from(total))],
        }),
    ]
    .prop_map(|p| Reply::Txt(p.to_strings()));
    let reply = prop_oneof![
        4 => plausible,
        6 => payload,
        2 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..260), 0..4)
            .prop_map(Reply::Txt),
        1 => Just(Reply::NoData),
        1 => Just(Reply::NameError),
        1 => Just(Reply::ServerFailure),
        1 => Just(Reply::Truncated),
    ];
    (
        prop_oneof![3 => 0u64..20, 1 => 0u64..40_000],
        prop::bool::weighted(0.1),
        reply,
    )
        .prop_map(|(advance_ms, to_other_name, reply)| Step {
            advance_ms,
            to_other_name,
            reply,
        })
}
