-- Optional: lets `supabackup restore` over the REST API move sequences forward after a restore.
-- Install once per project (SQL editor or psql). Only service_role may call it; it never moves a
-- sequence backwards.
CREATE OR REPLACE FUNCTION public.supabackup_setval(sequence_name text, new_value bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    seq regclass := sequence_name::regclass;
    current_value bigint;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = seq) <> 'S' THEN
        RAISE EXCEPTION '% is not a sequence', sequence_name;
    END IF;
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s', seq) INTO current_value;
    RETURN setval(seq, greatest(new_value, current_value), true);
END
$$;

REVOKE ALL ON FUNCTION public.supabackup_setval(text, bigint) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        REVOKE ALL ON FUNCTION public.supabackup_setval(text, bigint) FROM anon, authenticated;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT EXECUTE ON FUNCTION public.supabackup_setval(text, bigint) TO service_role;
    END IF;
END
$$;
