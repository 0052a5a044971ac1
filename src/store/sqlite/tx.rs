//! Transactions and savepoints whose control statements are prepared once.
//!
//! rusqlite's `Transaction` sends `BEGIN`, `COMMIT` and `SAVEPOINT` through
//! `execute_batch`, which parses the SQL every time: callgrind put that at ~12,000
//! instructions a statement, a quarter of an accepted job's store work (a job's life is
//! four transactions and, in a group commit, a savepoint). Here each control statement
//! goes through the connection's statement cache instead, so it costs one VDBE run.
//!
//! Same semantics as rusqlite's: a [`Tx`] or [`Savepoint`] dropped without `commit` rolls
//! back (so `?` and panics leave the file as it was); rollback errors on drop are ignored,
//! as rusqlite does, because the connection rolls back by itself when `COMMIT` fails for
//! good and the next `BEGIN` would report a connection left in a transaction.

use std::ops::Deref;

use rusqlite::Connection;

use crate::store::StoreError;

/// Runs one control statement through the statement cache.
fn run(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// An open transaction; derefs to the connection for the statements inside it.
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

/// A transaction that takes the write lock up front (`BEGIN IMMEDIATE`): no other process
/// can write between its first read and its writes, and it never fails half-way with
/// `SQLITE_BUSY`.
pub(super) fn write(conn: &mut Connection) -> Result<Tx<'_>, StoreError> {
    run(conn, "BEGIN IMMEDIATE")?;
    Ok(Tx { conn, open: true })
}

/// A deferred transaction for reads: every statement in it sees one snapshot.
pub(super) fn read(conn: &mut Connection) -> Result<Tx<'_>, StoreError> {
    run(conn, "BEGIN")?;
    Ok(Tx { conn, open: true })
}

impl Tx<'_> {
    /// Commits; with `synchronous = FULL` the changes are on disk when this returns.
    pub(super) fn commit(mut self) -> Result<(), StoreError> {
        run(self.conn, "COMMIT")?;
        self.open = false;
        Ok(())
    }

    /// A savepoint inside this transaction (one at a time: they all use one name).
    pub(super) fn savepoint(&self) -> Result<Savepoint<'_>, StoreError> {
        run(self.conn, "SAVEPOINT one")?;
        Ok(Savepoint {
            conn: self.conn,
            open: true,
        })
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = run(self.conn, "ROLLBACK");
        }
    }
}

/// A savepoint: released by `commit`, rolled back (alone) when dropped.
pub(super) struct Savepoint<'t> {
    conn: &'t Connection,
    open: bool,
}

impl Savepoint<'_> {
    /// Keeps the savepoint's changes in the enclosing transaction.
    pub(super) fn commit(mut self) -> Result<(), StoreError> {
        run(self.conn, "RELEASE one")?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Savepoint<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = run(self.conn, "ROLLBACK TO one");
            let _ = run(self.conn, "RELEASE one");
        }
    }
}
