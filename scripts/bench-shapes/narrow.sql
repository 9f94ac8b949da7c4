-- narrow: small fixed-width columns (psql -v rows=N). Deterministic.
CREATE TABLE public.narrow (id bigint PRIMARY KEY, account_id int NOT NULL, quantity int, active boolean, priority smallint);
INSERT INTO public.narrow
SELECT i, (i::bigint * 7919) % 100000, (i * 31) % 1000 - 500, i % 3 <> 0, (i % 5)::smallint
FROM generate_series(1, :rows) AS i;
