//! `tidings subscribers import`: reading a subscriber CSV into checked rows.

use crate::config::Config;
use crate::domain::{EmailAddress, SubscriberName};

/// One row of a subscriber CSV: valid, or its line number and problem.
pub type ImportLine = std::result::Result<ImportRow, (u64, String)>;

/// One valid row of a subscriber CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    pub editions: Vec<String>,
}

#[allow(clippy::type_complexity)]
/// The line a record starting at byte `at` is on, counted from 1. The csv
/// crate's own count lags by one after a CRLF (it starts the next record
/// at the LF), so the line ends before the record are skipped and counted here.
fn line_at(data: &[u8], at: u64) -> u64 {
    let at = usize::try_from(at).unwrap_or(usize::MAX).min(data.len());
    let start = at + data[at..].iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
    1 + data[..start].iter().filter(|b| **b == b'\n').count() as u64
}

/// Reads a CSV with the header `email,name,editions` (`name` and `editions`
/// optional; editions separated by `;`, `|` or spaces; none means every
/// edition). Each row is valid or an error with its line number; a missing
/// `email` column fails the whole file.
pub fn parse_subscriber_csv(data: &[u8], config: &Config) -> std::result::Result<Vec<ImportLine>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let email_col = column("email").ok_or("the header has no \"email\" column (expected email,name,editions)")?;
    let name_col = column("name");
    let editions_col = column("editions");
    let all: Vec<String> = config.editions.iter().map(|e| e.name.clone()).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(data, p.byte())).unwrap_or(0);
                rows.push(Err((line, format!("unreadable row: {e}"))));
                continue;
            }
        };
        let line = record.position().map(|p| line_at(data, p.byte())).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let raw_email = record.get(email_col).unwrap_or("");
        let email = match EmailAddress::parse(raw_email) {
            Ok(e) => e,
            Err(e) => {
                rows.push(Err((line, format!("\"{raw_email}\": {e}"))));
                continue;
            }
        };
        let name = match SubscriberName::parse(name_col.and_then(|c| record.get(c)).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) => {
                rows.push(Err((line, format!("{raw_email}: {e}"))));
                continue;
            }
        };
        let editions: Vec<String> = editions_col
            .and_then(|c| record.get(c))
            .map(|s| {
                s.split([';', '|', ' '])
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(unknown) = editions.iter().find(|e| !all.contains(e)) {
            rows.push(Err((
                line,
                format!("unknown edition \"{unknown}\" (editions: {})", all.join(", ")),
            )));
            continue;
        }
        rows.push(Ok(ImportRow {
            email,
            name,
            editions: if editions.is_empty() { all.clone() } else { editions },
        }));
    }
    Ok(rows)
}
