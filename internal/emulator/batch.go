package emulator

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
)

// Google's batch endpoint for Compute: one POST whose multipart/mixed body
// holds up to 1,000 API calls, each an application/http part with its own
// Content-ID; the answer is multipart/mixed too, one application/http
// response per call, tagged Content-ID: <response-ID>. gcloud sends calls on
// several resources this way (instances delete a b, instance-groups managed
// list across zones). Every call goes through the normal pipeline, so it is
// counted, rate-limited and fault-injected as its own method, exactly as if
// it had been sent alone; the batch itself is no API method.

// maxBatchCalls is GCE's documented limit of calls in one batch request.
const maxBatchCalls = 1000

// maxBatchBody bounds a whole batch (each call is bounded like a lone
// request, 8 MiB, by serve).
const maxBatchBody = 64 << 20

func (s *Server) batchRoutes() {
	s.mux.HandleFunc("POST /batch/compute/v1", s.serveBatch)
}

// batchCall is one call of a batch and, once served, its answer.
type batchCall struct {
	contentID string
	req       *http.Request
	early     *apiError // the part could not be read as a request
	resp      *bufferedResponse
}

func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	calls, e := readBatch(r)
	if e != nil {
		writeError(w, e)
		return
	}
	// GCE may run a batch's calls in any order, and does run them in
	// parallel: a wait in one part does not hold up the others.
	var wg sync.WaitGroup
	for _, bc := range calls {
		bc.resp = newBufferedResponse()
		if bc.early != nil {
			writeError(bc.resp, bc.early)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveBatchCall(bc)
		}()
	}
	wg.Wait()

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.SetBoundary("batch_" + mw.Boundary()) // Google's boundaries start so
	for _, bc := range calls {
		// Keys spelt as Google spells them (Set would write Content-Id).
		h := textproto.MIMEHeader{"Content-Type": {"application/http"}}
		if bc.contentID != "" {
			h["Content-ID"] = []string{"<response-" + bc.contentID + ">"}
		}
		pw, err := mw.CreatePart(h)
		if err != nil {
			writeError(w, &apiError{Code: 500, Reason: "internalError", Message: err.Error()})
			return
		}
		bc.resp.writeHTTP(pw)
	}
	if err := mw.Close(); err != nil {
		writeError(w, &apiError{Code: 500, Reason: "internalError", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.Header().Set("Content-Length", fmt.Sprint(body.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body.Bytes())
}

// serveBatchCall answers one call as the Compute API would answer it alone.
// Only Compute paths are served: the control API and other Google APIs are
// not reachable through Compute's batch endpoint.
func (s *Server) serveBatchCall(bc *batchCall) {
	if !strings.HasPrefix(bc.req.URL.Path, "/compute/v1/") {
		writeError(bc.resp, errNotFound(strings.TrimPrefix(bc.req.URL.Path, "/")))
		return
	}
	s.mux.ServeHTTP(bc.resp, bc.req)
}

// readBatch splits a batch request into its calls. A body that is not a
// multipart batch fails as a whole; a part that is not an HTTP request gets
// an error answer of its own. The messages are the emulator's: GCE's were
// not recorded.
func readBatch(r *http.Request) ([]*batchCall, *apiError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, errInvalid("A batch request must be multipart/mixed with a boundary, got Content-Type %q.", r.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, maxBatchBody), params["boundary"])
	var calls []*batchCall
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errInvalid("Could not read the batch body: %v.", err)
		}
		if len(calls) == maxBatchCalls {
			return nil, errInvalid("A batch request holds at most %d calls.", maxBatchCalls)
		}
		bc := &batchCall{contentID: strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(part.Header.Get("Content-ID")), "<"), ">")}
		calls = append(calls, bc)
		raw, err := io.ReadAll(io.LimitReader(part, 8<<20))
		if err != nil {
			return nil, errInvalid("Could not read the batch body: %v.", err)
		}
		if pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); pt != "application/http" {
			bc.early = errInvalid("Each part of a batch request must be application/http, got %q.", part.Header.Get("Content-Type"))
			continue
		}
		req, err := readBatchRequest(raw)
		if err != nil {
			bc.early = errInvalid("Could not parse the HTTP request in a batch part: %v.", err)
			continue
		}
		if req.Host == "" {
			req.Host = r.Host
		}
		req.RemoteAddr = r.RemoteAddr
		bc.req = req.WithContext(r.Context())
	}
	if len(calls) == 0 {
		return nil, errInvalid("A batch request must hold at least one call.")
	}
	return calls, nil
}

// readBatchRequest parses one application/http part. Without a
// Content-Length the rest of the part is the body.
func readBatchRequest(raw []byte) (*http.Request, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	var body []byte
	if req.Header.Get("Content-Length") != "" {
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
	} else if body, err = io.ReadAll(br); err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return req, nil
}

// bufferedResponse collects one call's answer for the batch response.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse { return &bufferedResponse{header: http.Header{}} }

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// writeHTTP renders the answer as the application/http body of a part.
func (b *bufferedResponse) writeHTTP(w io.Writer) {
	code := b.code
	if code == 0 {
		code = http.StatusOK
	}
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	b.header.Set("Content-Length", fmt.Sprint(b.body.Len()))
	_ = b.header.Write(w)
	_, _ = io.WriteString(w, "\r\n")
	_, _ = w.Write(b.body.Bytes())
}
