/// Session settings every supabackup connection uses, so output and input are deterministic
/// whatever the server's or role's defaults are.
enum Session {
    /// - Parameter pinSearchPath: set `search_path` to `pg_catalog` so `format_type` qualifies
    ///   every user type. Restores keep the server's search path, which triggers may rely on.
    static func configure(_ connection: PostgresConnection, applicationName: String, pinSearchPath: Bool) throws {
        try connection.execute(
            """
            SET client_encoding = 'UTF8';
            SET standard_conforming_strings = on;
            SET statement_timeout = 0;
            SET lock_timeout = 0;
            SET idle_in_transaction_session_timeout = 0;
            SET TimeZone = 'UTC';
            SET DateStyle = 'ISO, YMD';
            SET IntervalStyle = 'postgres';
            SET extra_float_digits = 1;
            SET bytea_output = 'hex';
            SET application_name = \(SQL.quoteLiteral(applicationName));
            """)
        if pinSearchPath { try connection.execute("SET search_path = pg_catalog") }
    }
}
