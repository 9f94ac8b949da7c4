/// The settings every supabackup transaction runs with, so output and input are deterministic
/// whatever the server's, the role's or another pooled client's settings are.
///
/// Everything is `SET LOCAL` inside the transaction: through a transaction-mode pooler
/// (Supavisor, PgBouncer) each transaction may run on another server backend, so a setting made
/// outside one lands on whichever backend is free and stays there for the next client. Nothing
/// here outlives the transaction: not even client_encoding or application_name, which a pooler
/// like PgBouncer would otherwise apply to the backend for the clients after us.
enum Session {
    /// How a transaction starts: the backup's snapshot or the restore's read-write transaction.
    enum Kind {
        /// `REPEATABLE READ, READ ONLY`, optionally importing an exported snapshot; search_path
        /// pinned to pg_catalog so `format_type` qualifies every user type; RLS an error
        /// instead of a silently partial read.
        case backup(snapshot: String?)
        /// `READ COMMITTED, READ WRITE`, with the role's own search_path (triggers may rely on
        /// it), never one another client left behind.
        case restore
    }

    /// Starts a transaction with the settings, in one round trip.
    static func begin(_ connection: PostgresConnection, _ kind: Kind) throws {
        var sql: String
        switch kind {
        case .backup(let snapshot):
            sql = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
            if let snapshot { sql += "SET TRANSACTION SNAPSHOT \(SQL.quoteLiteral(snapshot));" }
            sql += "SET LOCAL search_path = pg_catalog; SET LOCAL row_security = off;"
            sql += "SET LOCAL application_name = 'supabackup backup';"
        case .restore:
            sql = "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE; SET LOCAL search_path TO DEFAULT;"
            sql += "SET LOCAL application_name = 'supabackup restore';"
        }
        try connection.execute(sql + settings)
    }

    /// Output and input styles the archive format fixes, and no timeouts of the server's or
    /// the role's cutting a long backup or restore short.
    static let settings = """
        SET LOCAL client_encoding = 'UTF8';
        SET LOCAL standard_conforming_strings = on;
        SET LOCAL statement_timeout = 0;
        SET LOCAL lock_timeout = 0;
        SET LOCAL idle_in_transaction_session_timeout = 0;
        SET LOCAL TimeZone = 'UTC';
        SET LOCAL DateStyle = 'ISO, YMD';
        SET LOCAL IntervalStyle = 'postgres';
        SET LOCAL extra_float_digits = 1;
        SET LOCAL bytea_output = 'hex';
        SET LOCAL xmloption = content;
        SET LOCAL array_nulls = on;
        SET LOCAL lc_monetary TO DEFAULT;
        """
}
