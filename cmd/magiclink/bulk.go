package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magiclink-dev/magiclink/internal/origin"
	"github.com/magiclink-dev/magiclink/token"
)

const (
	batchRows        = 256                    // rows handed to a worker at a time
	progressInterval = 250 * time.Millisecond // least time between progress updates
)

// signBulk runs sign --csv on the file named csvFile ("-" for stdin).
func signBulk(csvFile string, o signOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	in := stdin
	if csvFile != "-" {
		f, err := os.Open(csvFile)
		if err != nil {
			return failure(stderr, "sign", err)
		}
		defer f.Close()
		in = f
	}
	now := time.Now().UTC().Truncate(time.Second)
	// Flag values that every row shares are checked once here, not reported
	// on every row.
	check := token.Claims{Subject: "check", Audience: []string{"check"}, Issuer: o.iss, Path: o.path, IssuedAt: now, Expiry: now.Add(o.ttl)}
	if o.aud != "" {
		check.Audience[0] = o.aud
	}
	if _, err := o.signer.Sign(check); err != nil {
		return failure(stderr, "sign", err)
	}
	job := bulkJob{
		signOptions: o,
		issuedAt:    now,
		workers:     runtime.GOMAXPROCS(0),
		progress:    isTerminal(stderr),
	}
	stats, err := job.run(in, stdout, stderr)
	if job.progress {
		fmt.Fprintf(stderr, "\r\x1b[Kmagiclink: sign: %d links signed\n", stats.signed)
	}
	if err != nil {
		return failure(stderr, "sign", err)
	}
	if stats.failed > 0 {
		fmt.Fprintf(stderr, "magiclink: sign: %d of %d rows failed and were left out\n", stats.failed, stats.signed+stats.failed)
		return exitFailure
	}
	return exitOK
}

// A bulkJob signs one link per CSV row on several goroutines, writing the rows
// in input order with a fixed amount of memory.
type bulkJob struct {
	signOptions
	issuedAt time.Time // iat of every link; exp is issuedAt + ttl
	workers  int       // signing goroutines
	progress bool      // write progress to stderr

	cols    columns
	expires string // exp in RFC 3339, the expires_at column
}

// columns holds the index in a record of each known column, -1 when absent.
type columns struct {
	n                          int // fields in a record
	sub, email, name, url, pth int
}

// bulkStats counts rows.
type bulkStats struct {
	signed, failed int
}

// A batch is a run of consecutive rows, signed by one worker.
type batch struct {
	rows   []row
	fields []string      // the rows' fields, cols.n per good row
	out    bytes.Buffer  // the output CSV lines of the good rows
	csv    *csv.Writer   // writes to out
	errs   []rowError    // the bad rows, in line order
	done   chan struct{} // receives once the batch is signed
}

// newBatch returns an empty batch.
func newBatch() *batch {
	b := &batch{done: make(chan struct{}, 1)}
	b.csv = csv.NewWriter(&b.out)
	return b
}

// A row is one CSV record; problem is set when it cannot be signed.
type row struct {
	line    int
	start   int // index of its first field in batch.fields
	problem string
}

// A rowError reports a row left out of the output.
type rowError struct {
	line    int
	problem string
}

// run streams in to out. Row problems go to stderr; an error is returned only
// when the whole job fails (unreadable input, a bad header, a failed write).
func (j *bulkJob) run(in io.Reader, out, stderr io.Writer) (bulkStats, error) {
	r := csv.NewReader(in)
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return bulkStats{}, errors.New("--csv: the file is empty; its first line must be a header naming at least the sub column")
	}
	if err != nil {
		return bulkStats{}, csvError(err)
	}
	if j.cols, err = parseHeader(header); err != nil {
		return bulkStats{}, err
	}
	j.expires = j.issuedAt.Add(j.ttl).Format(time.RFC3339)

	w := bufio.NewWriterSize(out, 64<<10)
	hw := csv.NewWriter(w)
	hw.Write(append(header[:len(header):len(header)], "token", "link", "expires_at"))
	hw.Flush()
	if err := hw.Error(); err != nil {
		return bulkStats{}, fmt.Errorf("writing output: %w", err)
	}

	nbatches := 4 * j.workers
	free := make(chan *batch, nbatches)
	for range nbatches {
		free <- newBatch()
	}
	work := make(chan *batch, nbatches)
	ordered := make(chan *batch, nbatches)

	var wg sync.WaitGroup
	for range j.workers {
		wg.Go(func() {
			s := j.newSigner()
			for b := range work {
				s.sign(b)
				b.done <- struct{}{}
			}
		})
	}

	var stop atomic.Bool
	var stats bulkStats
	var writeErr error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		last := time.Now()
		for b := range ordered {
			<-b.done
			if writeErr == nil {
				writeErr = j.emit(w, stderr, b)
				stats.signed += len(b.rows) - len(b.errs)
				stats.failed += len(b.errs)
				if j.progress && time.Since(last) >= progressInterval {
					last = time.Now()
					fmt.Fprintf(stderr, "\rmagiclink: sign: %d links signed", stats.signed)
				}
				if writeErr != nil {
					stop.Store(true)
				}
			}
			free <- b
		}
		if writeErr == nil {
			writeErr = w.Flush()
		}
	}()

	readErr := j.read(r, free, work, ordered, &stop)
	close(work)
	close(ordered)
	wg.Wait()
	<-writerDone
	if readErr != nil {
		return stats, readErr
	}
	if writeErr != nil {
		return stats, fmt.Errorf("writing output: %w", writeErr)
	}
	return stats, nil
}

// read fills batches from r and hands each to a worker (work) and, in order,
// to the writer (ordered).
func (j *bulkJob) read(r *csv.Reader, free <-chan *batch, work, ordered chan<- *batch, stop *atomic.Bool) error {
	for !stop.Load() {
		b := <-free
		b.rows, b.fields, b.errs = b.rows[:0], b.fields[:0], b.errs[:0]
		b.out.Reset()
		var err error
		for len(b.rows) < batchRows {
			var rec []string
			rec, err = r.Read()
			if err != nil {
				var perr *csv.ParseError
				if !errors.As(err, &perr) {
					break
				}
				problem := perr.Err.Error()
				if errors.Is(perr.Err, csv.ErrFieldCount) {
					problem = fmt.Sprintf("has %d fields but the header has %d", len(rec), j.cols.n)
				}
				b.rows = append(b.rows, row{line: perr.StartLine, problem: problem})
				err = nil
				continue
			}
			line, _ := r.FieldPos(0)
			b.rows = append(b.rows, row{line: line, start: len(b.fields)})
			b.fields = append(b.fields, rec...)
		}
		if len(b.rows) > 0 {
			ordered <- b
			work <- b
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading --csv: %w", err)
		}
	}
	return nil
}

// emit writes the signed rows of b to w and its row problems to stderr.
func (j *bulkJob) emit(w *bufio.Writer, stderr io.Writer, b *batch) error {
	for _, e := range b.errs {
		if j.progress {
			io.WriteString(stderr, "\r\x1b[K")
		}
		fmt.Fprintf(stderr, "magiclink: sign: line %d: %s\n", e.line, e.problem)
	}
	if err := b.csv.Error(); err != nil {
		return err
	}
	_, err := w.Write(b.out.Bytes())
	return err
}

// csvError describes a CSV error at the header.
func csvError(err error) error {
	var perr *csv.ParseError
	if errors.As(err, &perr) {
		return fmt.Errorf("--csv: line %d: %v", perr.StartLine, perr.Err)
	}
	return fmt.Errorf("reading --csv: %w", err)
}

// parseHeader finds the known columns in the header record. Names are matched
// without regard to case or surrounding space.
func parseHeader(header []string) (columns, error) {
	c := columns{n: len(header), sub: -1, email: -1, name: -1, url: -1, pth: -1}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		var idx *int
		switch name := strings.ToLower(strings.TrimSpace(h)); name {
		case "sub":
			idx = &c.sub
		case "email":
			idx = &c.email
		case "name":
			idx = &c.name
		case "url":
			idx = &c.url
		case "path":
			idx = &c.pth
		case "token", "link", "expires_at":
			return c, fmt.Errorf("--csv: the header has a %s column, which the output adds; rename or remove it", name)
		default:
			continue
		}
		if *idx >= 0 {
			return c, fmt.Errorf("--csv: the header names the %s column twice", strings.ToLower(strings.TrimSpace(h)))
		}
		*idx = i
	}
	if c.sub < 0 {
		return c, errors.New("--csv: the header (line 1) has no sub column; name the user id column sub")
	}
	return c, nil
}

// A rowSigner is one worker's state.
type rowSigner struct {
	j      *bulkJob
	claims token.Claims
	fixed  []string // the audience from --aud
	last   *linkTarget
	buf    []byte   // the link (or the token alone) of the row being signed
	rec    []string // the output record of the row being signed
}

// A linkTarget is what a link URL contributes to a row: its audience and the
// text of the link around the token.
type linkTarget struct {
	raw            string
	aud            []string
	prefix, suffix string
	err            error
}

func (j *bulkJob) newSigner() *rowSigner {
	s := &rowSigner{j: j}
	s.claims = token.Claims{
		Issuer:   j.iss,
		IssuedAt: j.issuedAt,
		Expiry:   j.issuedAt.Add(j.ttl),
		Once:     j.once,
	}
	if j.aud != "" {
		s.fixed = []string{j.aud}
	}
	return s
}

// target returns the linkTarget of raw, reusing the last one when it matches.
func (s *rowSigner) target(raw string) *linkTarget {
	if s.last != nil && s.last.raw == raw {
		return s.last
	}
	t := &linkTarget{raw: raw}
	s.last = t
	u, err := token.ParseLinkURL(raw)
	if err != nil {
		t.err = fmt.Errorf("url: %w", err)
		return t
	}
	t.aud = []string{origin.Of(u)}
	if t.prefix, t.suffix, err = token.LinkTemplate(raw, s.j.param); err != nil {
		t.err = fmt.Errorf("url: %w", err)
	}
	return t
}

// sign signs the rows of b into b.out and b.errs.
func (s *rowSigner) sign(b *batch) {
	for _, r := range b.rows {
		if r.problem == "" {
			r.problem = s.signRow(b, b.fields[r.start:r.start+s.j.cols.n])
		}
		if r.problem != "" {
			b.errs = append(b.errs, rowError{line: r.line, problem: r.problem})
		}
	}
	b.csv.Flush()
}

// signRow writes the output record for the record f to b.csv, or returns
// what is wrong with the record.
func (s *rowSigner) signRow(b *batch, f []string) string {
	cols := &s.j.cols
	c := &s.claims
	c.Subject = f[cols.sub]
	if c.Subject == "" {
		return "sub is empty"
	}
	c.Email, c.Name, c.Path, c.ID = field(f, cols.email), field(f, cols.name), s.j.path, ""
	if p := field(f, cols.pth); p != "" {
		c.Path = p
	}
	raw := s.j.url
	if u := field(f, cols.url); u != "" {
		raw = u
	}
	var t *linkTarget
	if raw != "" {
		if t = s.target(raw); t.err != nil {
			return t.err.Error()
		}
	}
	switch {
	case s.fixed != nil:
		c.Audience = s.fixed
	case t != nil:
		c.Audience = t.aud
	default:
		return "no audience: give --aud, --url or a url in this row"
	}

	// The token is signed into the link's text, which becomes one string;
	// the token column is a substring of it.
	var prefix, suffix string
	if t != nil {
		prefix, suffix = t.prefix, t.suffix
	}
	buf, err := s.j.signer.AppendSign(append(s.buf[:0], prefix...), c)
	if err != nil {
		return oneLine(err.Error())
	}
	s.buf = append(buf, suffix...)
	link := string(s.buf)
	tok := link[len(prefix) : len(link)-len(suffix)]
	if t == nil {
		link = ""
	}
	s.rec = append(append(s.rec[:0], f...), tok, link, s.j.expires)
	b.csv.Write(s.rec) // a write error sticks to b.csv; emit reports it
	return ""
}

// field returns f[i], or "" when the column is absent (i < 0).
func field(f []string, i int) string {
	if i < 0 {
		return ""
	}
	return f[i]
}
