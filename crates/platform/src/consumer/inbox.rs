//! The inbox: each event id claimed once, inside the handler's transaction.

use events::EventKey;
use sqlx::AnyConnection;

use crate::db::now_text;

/// Records `eventId` in the inbox inside the handler's transaction. Returns `false` if it
/// was already there: the caller must then roll back and report [`Handled::Duplicate`].
pub async fn claim(conn: &mut AnyConnection, key: &EventKey) -> Result<bool, sqlx::Error> {
    Ok(claim_all(conn, &[key])
        .await?
        .first()
        .copied()
        .unwrap_or(false))
}

/// [`claim`] for many events in one statement: records each `eventId` not yet in the inbox
/// and returns, for each key in order, whether it was claimed now. A key that occurs twice
/// is claimed at most once (its first occurrence).
pub async fn claim_all(
    conn: &mut AnyConnection,
    keys: &[&EventKey],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut first = std::collections::HashSet::new();
    let fresh: Vec<&EventKey> = keys
        .iter()
        .copied()
        .filter(|k| first.insert(k.event_id.as_str()))
        .collect();
    let mut claimed = std::collections::HashSet::new();
    let now = now_text();
    for chunk in fresh.chunks(crate::db::rows_per_statement(3)) {
        let values = crate::db::values(chunk.len(), 3);
        let sql = format!(
            "INSERT INTO inbox (event_id, event_type, handled_at) VALUES {values} \
             ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for k in chunk {
            q = q
                .bind(k.event_id.clone())
                .bind(k.event_type.clone())
                .bind(now.clone());
        }
        claimed.extend(q.fetch_all(&mut *conn).await?);
    }
    // The first occurrence of a claimed id takes the claim; removing it leaves the rest
    // duplicates.
    Ok(keys
        .iter()
        .map(|k| claimed.remove(k.event_id.as_str()))
        .collect())
}
