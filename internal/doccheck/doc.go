// Package doccheck holds a test that every exported identifier of the
// module's packages has a doc comment.
package doccheck
