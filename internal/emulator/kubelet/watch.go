package kubelet

import (
	"context"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// follower keeps one watch of the kubelet open, as a reflector does, but
// without a goroutine of its own: the kubelet's loop reads its events. It
// lists once, watches from the list's resourceVersion, watches again from
// the last one it saw when a watch ends, and lists again after an error
// (410 Gone: the version is too old). Thousands of kubelets in one process
// make every goroutine and buffer count.
type follower struct {
	// list lists the objects and hands them to the kubelet; it returns the
	// list's resourceVersion.
	list  func(ctx context.Context) (string, error)
	watch func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	rv    string
	w     watch.Interface
	// retryAt is when a failed list or watch is tried again.
	retryAt time.Time
	backoff time.Duration
}

// events is the open watch's channel; nil (never ready) when none is open.
func (f *follower) events() <-chan watch.Event {
	if f.w == nil {
		return nil
	}
	return f.w.ResultChan()
}

// open lists when needed and starts a watch, unless it failed moments ago.
func (f *follower) open(ctx context.Context, now time.Time) {
	if f.w != nil || now.Before(f.retryAt) {
		return
	}
	err := f.start(ctx)
	if err == nil {
		f.backoff = 0
		return
	}
	f.backoff = min(max(2*f.backoff, 500*time.Millisecond), 10*time.Second)
	f.retryAt = now.Add(jitter(f.backoff, 0.2))
}

func (f *follower) start(ctx context.Context) error {
	if f.rv == "" {
		rv, err := f.list(ctx)
		if err != nil {
			return err
		}
		f.rv = rv
	}
	w, err := f.watch(ctx, metav1.ListOptions{ResourceVersion: f.rv, AllowWatchBookmarks: true})
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			f.rv = ""
		}
		return err
	}
	f.w = w
	return nil
}

// seen records an event's resourceVersion; an error event (the watch's
// version expired) makes the next open list again. It reports whether the
// event carries an object to handle.
func (f *follower) seen(ev watch.Event) bool {
	switch ev.Type {
	case watch.Error:
		if st, ok := ev.Object.(*metav1.Status); ok && (st.Code == http.StatusGone || st.Reason == metav1.StatusReasonExpired) {
			f.rv = ""
		}
		f.stop()
		return false
	case watch.Bookmark:
		f.remember(ev.Object)
		return false
	}
	f.remember(ev.Object)
	return true
}

func (f *follower) remember(obj runtime.Object) {
	if m, ok := obj.(metav1.Object); ok && m.GetResourceVersion() != "" {
		f.rv = m.GetResourceVersion()
	}
}

// ended is a watch the server closed (its timeout): the next open watches
// again from the last version seen.
func (f *follower) ended() { f.w = nil }

func (f *follower) stop() {
	if f.w != nil {
		f.w.Stop()
		f.w = nil
	}
}
