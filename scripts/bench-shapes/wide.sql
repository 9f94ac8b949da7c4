-- wide text: nine text/varchar columns of everyday lengths (psql -v rows=N). Deterministic.
CREATE TABLE public.wide (
    id bigint PRIMARY KEY, first_name text, last_name text, email varchar(320) NOT NULL, phone text,
    street text, city text, country varchar(2), notes text, status text NOT NULL
);
INSERT INTO public.wide
SELECT i, 'First' || (i % 4999), 'Last-' || md5(i::text)::varchar(10), 'user' || i || '@example.com',
       '+1-555-' || lpad((i % 10000)::text, 4, '0'), (i % 999) || ' Main Street, Apt ' || (i % 40),
       (ARRAY['Berlin', 'Lisbon', 'São Paulo', 'Zürich', 'Tokyo', 'New York'])[1 + i % 6],
       (ARRAY['DE', 'PT', 'BR', 'CH', 'JP', 'US'])[1 + i % 6],
       CASE WHEN i % 4 = 0 THEN NULL ELSE repeat('note "quoted" ' || md5(i::text) || E'\t', 1 + i % 3) END,
       (ARRAY['active', 'invited', 'suspended'])[1 + i % 3]
FROM generate_series(1, :rows) AS i;
