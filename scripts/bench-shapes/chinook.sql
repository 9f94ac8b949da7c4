-- A real-world schema: Chinook (github.com/lerocha/chinook-database, the PostgreSQL edition's
-- tables, keys and foreign-key indexes), filled with generated data at :scale times the original
-- row counts (275 artists, 347 albums, 3,503 tracks, 59 customers, 412 invoices, 2,240 invoice
-- lines, 8,715 playlist tracks). Deterministic.
CREATE TABLE public.artist (artist_id int PRIMARY KEY, name varchar(120));
CREATE TABLE public.album (album_id int PRIMARY KEY, title varchar(160) NOT NULL,
    artist_id int NOT NULL REFERENCES public.artist (artist_id));
CREATE TABLE public.genre (genre_id int PRIMARY KEY, name varchar(120));
CREATE TABLE public.media_type (media_type_id int PRIMARY KEY, name varchar(120));
CREATE TABLE public.track (track_id int PRIMARY KEY, name varchar(200) NOT NULL,
    album_id int REFERENCES public.album (album_id), media_type_id int NOT NULL REFERENCES public.media_type (media_type_id),
    genre_id int REFERENCES public.genre (genre_id), composer varchar(220), milliseconds int NOT NULL, bytes int,
    unit_price numeric(10, 2) NOT NULL);
CREATE TABLE public.employee (employee_id int PRIMARY KEY, last_name varchar(20) NOT NULL, first_name varchar(20) NOT NULL,
    title varchar(30), reports_to int REFERENCES public.employee (employee_id), birth_date timestamp, hire_date timestamp,
    address varchar(70), city varchar(40), state varchar(40), country varchar(40), postal_code varchar(10),
    phone varchar(24), fax varchar(24), email varchar(60));
CREATE TABLE public.customer (customer_id int PRIMARY KEY, first_name varchar(40) NOT NULL, last_name varchar(20) NOT NULL,
    company varchar(80), address varchar(70), city varchar(40), state varchar(40), country varchar(40),
    postal_code varchar(10), phone varchar(24), fax varchar(24), email varchar(60) NOT NULL,
    support_rep_id int REFERENCES public.employee (employee_id));
CREATE TABLE public.invoice (invoice_id int PRIMARY KEY, customer_id int NOT NULL REFERENCES public.customer (customer_id),
    invoice_date timestamp NOT NULL, billing_address varchar(70), billing_city varchar(40), billing_state varchar(40),
    billing_country varchar(40), billing_postal_code varchar(10), total numeric(10, 2) NOT NULL);
CREATE TABLE public.invoice_line (invoice_line_id int PRIMARY KEY, invoice_id int NOT NULL REFERENCES public.invoice (invoice_id),
    track_id int NOT NULL REFERENCES public.track (track_id), unit_price numeric(10, 2) NOT NULL, quantity int NOT NULL);
CREATE TABLE public.playlist (playlist_id int PRIMARY KEY, name varchar(120));
CREATE TABLE public.playlist_track (playlist_id int NOT NULL REFERENCES public.playlist (playlist_id),
    track_id int NOT NULL REFERENCES public.track (track_id), PRIMARY KEY (playlist_id, track_id));
CREATE INDEX album_artist_id_idx ON public.album (artist_id);
CREATE INDEX track_album_id_idx ON public.track (album_id);
CREATE INDEX track_genre_id_idx ON public.track (genre_id);
CREATE INDEX track_media_type_id_idx ON public.track (media_type_id);
CREATE INDEX employee_reports_to_idx ON public.employee (reports_to);
CREATE INDEX customer_support_rep_id_idx ON public.customer (support_rep_id);
CREATE INDEX invoice_customer_id_idx ON public.invoice (customer_id);
CREATE INDEX invoice_line_invoice_id_idx ON public.invoice_line (invoice_id);
CREATE INDEX invoice_line_track_id_idx ON public.invoice_line (track_id);
CREATE INDEX playlist_track_track_id_idx ON public.playlist_track (track_id);

INSERT INTO public.genre SELECT i, (ARRAY['Rock', 'Jazz', 'Metal', 'Alternative & Punk', 'Blues', 'Latin', 'Reggae', 'Pop',
    'Soundtrack', 'Bossa Nova', 'Easy Listening', 'Heavy Metal', 'R&B/Soul', 'Electronica/Dance', 'World', 'Hip Hop/Rap',
    'Science Fiction', 'TV Shows', 'Sci Fi & Fantasy', 'Drama', 'Comedy', 'Alternative', 'Classical', 'Opera', 'Rock And Roll'])[i]
FROM generate_series(1, 25) AS i;
INSERT INTO public.media_type SELECT i, (ARRAY['MPEG audio file', 'Protected AAC audio file', 'Protected MPEG-4 video file',
    'Purchased AAC audio file', 'AAC audio file'])[i] FROM generate_series(1, 5) AS i;
INSERT INTO public.artist SELECT i, 'Artist ' || initcap(md5(i::text)::varchar(8)) FROM generate_series(1::bigint, 275 * :scale) AS i;
INSERT INTO public.album SELECT i, 'Album ' || i || ': ' || md5(i::text)::varchar(12), 1 + (i * 7) % (275 * :scale)
FROM generate_series(1::bigint, 347 * :scale) AS i;
INSERT INTO public.track
SELECT i, 'Track ' || i || ' (' || md5(i::text)::varchar(6) || ')', 1 + i % (347 * :scale), 1 + i % 5, 1 + i % 25,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'Composer ' || (i % 800) || ', Co-writer ' || (i % 91) END,
       120000 + (i * 7919) % 300000, 2000000 + (i * 104729) % 9000000, CASE WHEN i % 10 = 0 THEN 1.99 ELSE 0.99 END
FROM generate_series(1::bigint, 3503 * :scale) AS i;
INSERT INTO public.employee
SELECT i, 'Last' || i, 'First' || i, (ARRAY['General Manager', 'Sales Manager', 'Sales Support Agent', 'IT Staff'])[1 + i % 4],
       CASE WHEN i = 1 THEN NULL ELSE 1 + (i - 2) / 3 END, timestamp '1960-01-01' + i * interval '97 days',
       timestamp '2002-04-01' + i * interval '13 days', i || ' Jasper Ave NW', 'Edmonton', 'AB', 'Canada', 'T5K 2N1',
       '+1 (780) 428-' || lpad(i::text, 4, '0'), '+1 (780) 428-3457', 'employee' || i || '@chinookcorp.com'
FROM generate_series(1::bigint, 8 * :scale) AS i;
INSERT INTO public.customer
SELECT i, 'Customer' || i, 'Name' || (i % 997), CASE WHEN i % 5 = 0 THEN 'Company ' || (i % 50) || ' Ltd.' END,
       (i % 500) || ' Rua Dr. Falcão Filho', (ARRAY['São José dos Campos', 'Stuttgart', 'Montréal', 'Oslo', 'Praha'])[1 + i % 5],
       CASE WHEN i % 3 = 0 THEN 'SP' END, (ARRAY['Brazil', 'Germany', 'Canada', 'Norway', 'Czech Republic'])[1 + i % 5],
       lpad((i % 99999)::text, 5, '0'), '+55 (12) 3923-' || lpad((i % 9999)::text, 4, '0'), NULL,
       'customer' || i || '@example.com', 1 + i % (8 * :scale)
FROM generate_series(1::bigint, 59 * :scale) AS i;
INSERT INTO public.invoice
SELECT i, 1 + (i * 13) % (59 * :scale), timestamp '2021-01-01' + i * interval '3 hours', (i % 500) || ' Theodor-Heuss-Straße 34',
       'Stuttgart', NULL, 'Germany', '70174', ((i % 20) + 0.98)::numeric(10, 2)
FROM generate_series(1::bigint, 412 * :scale) AS i;
INSERT INTO public.invoice_line
SELECT i, 1 + i % (412 * :scale), 1 + (i * 7919) % (3503 * :scale), 0.99, 1 FROM generate_series(1::bigint, 2240 * :scale) AS i;
INSERT INTO public.playlist SELECT i, 'Playlist ' || i FROM generate_series(1::bigint, 18 * :scale) AS i;
INSERT INTO public.playlist_track
SELECT DISTINCT 1 + i % (18 * :scale), 1 + (i * 104729) % (3503 * :scale) FROM generate_series(1::bigint, 8715 * :scale) AS i;
