package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// apiError is a Compute error. It renders either as the synchronous HTTP error
// envelope (lowerCamel reason) or inside a DONE operation (UPPER_SNAKE code),
// because real GCE reports the same failure through both channels.
type apiError struct {
	Code    int    // HTTP status
	Reason  string // synchronous reason, e.g. "notFound"
	Domain  string // "global" or "usageLimits"
	OpCode  string // operation error code, e.g. "RESOURCE_NOT_FOUND"
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Code, e.Reason, e.Message) }

// envelope is the body of a synchronous error, exactly as Compute sends it.
func (e *apiError) envelope() map[string]any {
	domain := e.Domain
	if domain == "" {
		domain = "global"
	}
	return map[string]any{"error": map[string]any{
		"code":    e.Code,
		"message": e.Message,
		"errors": []map[string]any{{
			"message": e.Message,
			"domain":  domain,
			"reason":  e.Reason,
		}},
	}}
}

// opCode is the UPPER_SNAKE code used when the error is delivered inside an operation.
func (e *apiError) opCode() string {
	if e.OpCode != "" {
		return e.OpCode
	}
	if c, ok := reasonOpCodes[e.Reason]; ok {
		return c
	}
	return strings.ToUpper(e.Reason)
}

var reasonOpCodes = map[string]string{
	"notFound":                       "RESOURCE_NOT_FOUND",
	"alreadyExists":                  "RESOURCE_ALREADY_EXISTS",
	"invalid":                        "INVALID_FIELD_VALUE",
	"badRequest":                     "BAD_REQUEST",
	"required":                       "REQUIRED_FIELD_MISSING",
	"resourceInUseByAnotherResource": "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE",
	"resourceNotReady":               "RESOURCE_NOT_READY",
	"conditionNotMet":                "CONDITION_NOT_MET",
	"quotaExceeded":                  "QUOTA_EXCEEDED",
	"rateLimitExceeded":              "RATE_LIMIT_EXCEEDED",
	"forbidden":                      "FORBIDDEN",
	"backendError":                   "INTERNAL_ERROR",
	"internalError":                  "INTERNAL_ERROR",
	"serviceUnavailable":             "SERVICE_UNAVAILABLE",
}

// httpStatusText is how Compute spells HTTP statuses in operations
// (httpErrorMessage: "NOT FOUND", "PRECONDITION FAILED").
func httpStatusText(code int) string {
	return strings.ToUpper(http.StatusText(code))
}

func errNotFound(path string) *apiError {
	return &apiError{Code: 404, Reason: "notFound", Message: fmt.Sprintf("The resource '%s' was not found", path)}
}

func errAlreadyExists(path string) *apiError {
	return &apiError{Code: 409, Reason: "alreadyExists", Message: fmt.Sprintf("The resource '%s' already exists", path)}
}

func errInvalid(format string, args ...any) *apiError {
	return &apiError{Code: 400, Reason: "invalid", Message: fmt.Sprintf(format, args...)}
}

func errInvalidField(field, value, why string) *apiError {
	msg := fmt.Sprintf("Invalid value for field '%s': '%s'.", field, value)
	if why != "" {
		msg += " " + why
	}
	return &apiError{Code: 400, Reason: "invalid", Message: msg}
}

func errBadRequest(format string, args ...any) *apiError {
	return &apiError{Code: 400, Reason: "badRequest", Message: fmt.Sprintf(format, args...)}
}

func errRequired(field string) *apiError {
	return &apiError{Code: 400, Reason: "required", Message: fmt.Sprintf("Required field '%s' not specified", field)}
}

// errInUse is the "already being used by" error. kind is the snake_case type
// as GCE prints it ("target_pool", "http_health_check", "network").
func errInUse(kind, path, user string) *apiError {
	return &apiError{Code: 400, Reason: "resourceInUseByAnotherResource",
		Message: fmt.Sprintf("The %s resource '%s' is already being used by '%s'", kind, path, user)}
}

func errNotReady(path string) *apiError {
	return &apiError{Code: 400, Reason: "resourceNotReady", Message: fmt.Sprintf("The resource '%s' is not ready", path)}
}

func errFingerprint(msg string) *apiError {
	return &apiError{Code: 412, Reason: "conditionNotMet", Message: msg}
}

func errQuota(metric string, limit float64, region string) *apiError {
	where := "in region " + region
	if region == "" {
		where = "globally"
	}
	return &apiError{Code: 403, Reason: "quotaExceeded", Domain: "usageLimits",
		Message: fmt.Sprintf("Quota '%s' exceeded. Limit: %.1f %s.", metric, limit, where)}
}

func errRateLimit(group string) *apiError {
	return &apiError{Code: 403, Reason: "rateLimitExceeded", Domain: "usageLimits",
		Message: fmt.Sprintf("Quota exceeded for quota group '%s' and limit 'Queries per minute' of service 'compute.googleapis.com' for consumer 'project_number:0'.", group)}
}

func errForbiddenProject(project string) *apiError {
	return &apiError{Code: 403, Reason: "forbidden",
		Message: fmt.Sprintf("Required 'compute.projects.get' permission for 'projects/%s'", project)}
}
