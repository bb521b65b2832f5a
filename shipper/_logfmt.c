/* shipper._logfmt: the split of a common logfmt line, in C, for shipper.logfmt.

   split(line: str) -> dict | None

   It takes the lines Go services write: `key=value` pairs separated by whitespace, each value bare
   or double-quoted, and no backslash anywhere. A bare value that is a number becomes one, as
   shipper.logfmt._number decides. Any other line (a bare key, an escape, a quote out of place, a
   number spelt with non-ASCII digits, no pair at all) gives None, and shipper.logfmt's Python
   reading, the reference, decides: it reads the line or says why it is not logfmt. So this file
   is never asked to be right about a line it does not take, only about the ones it takes, and
   tests/test_logfmt_native.py checks those against the reference on generated lines.

   Why C: the Python split costs about 3 us a line where orjson reads the same event as JSON in
   0.4 us; this one about 0.4 us. Characters are read through PyUnicode_READ and pieces cut with
   PyUnicode_Substring: no C string, no buffer of our own, nothing to overrun. Whitespace is
   Py_UNICODE_ISSPACE, what str.split() and re's \s use.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ASCII_SPACE(c) ((c) == ' ' || (c) == '\t')
#define IS_SPACE(c) (IS_ASCII_SPACE(c) || Py_UNICODE_ISSPACE(c))

/* Outcome of reading a bare value that starts like a number. */
enum { NUMBER_OK, NUMBER_TEXT, NUMBER_DECLINE, NUMBER_ERROR };

/* The number in line[start:end] into *out, as shipper.logfmt._number: `-?digits` is an int when
   it has at most 19 digits, no leading zero (but "0") and fits int64; `-?digits.digits[e[+-]digits]`
   or `-?digits e[+-]digits` is a float when finite. NUMBER_TEXT: keep the text. NUMBER_DECLINE:
   a character outside ASCII, which re's \d might still read as a digit: the reference decides. */
static int
read_number(PyObject *line, int kind, const void *data, Py_ssize_t start, Py_ssize_t end, PyObject **out)
{
    Py_ssize_t i = start, digits_start, digits;
    int negative = 0;

    for (Py_ssize_t j = start; j < end; j++) {
        if (PyUnicode_READ(kind, data, j) > 127)
            return NUMBER_DECLINE;
    }
    if (PyUnicode_READ(kind, data, i) == '-') {
        negative = 1;
        i++;
    }
    digits_start = i;
    while (i < end && IS_DIGIT(PyUnicode_READ(kind, data, i)))
        i++;
    digits = i - digits_start;
    if (digits == 0)
        return NUMBER_TEXT;

    if (i == end) {  /* an integer */
        uint64_t magnitude = 0;
        if (digits > 19 || (digits > 1 && PyUnicode_READ(kind, data, digits_start) == '0'))
            return NUMBER_TEXT;
        for (Py_ssize_t j = digits_start; j < end; j++)  /* 19 digits stay below 2**64 */
            magnitude = magnitude * 10 + (uint64_t)(PyUnicode_READ(kind, data, j) - '0');
        if (magnitude > (uint64_t)INT64_MAX + (uint64_t)negative)
            return NUMBER_TEXT;
        *out = negative ? PyLong_FromLongLong(magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude)
                        : PyLong_FromLongLong((int64_t)magnitude);
        return *out ? NUMBER_OK : NUMBER_ERROR;
    }

    Py_UCS4 c = PyUnicode_READ(kind, data, i);
    if (c == '.') {
        Py_ssize_t fraction = ++i;
        while (i < end && IS_DIGIT(PyUnicode_READ(kind, data, i)))
            i++;
        if (i == fraction)
            return NUMBER_TEXT;
        if (i < end)
            c = PyUnicode_READ(kind, data, i);
    }
    if (i < end) {
        if (c != 'e' && c != 'E')
            return NUMBER_TEXT;
        i++;
        if (i < end && (PyUnicode_READ(kind, data, i) == '+' || PyUnicode_READ(kind, data, i) == '-'))
            i++;
        Py_ssize_t exponent = i;
        while (i < end && IS_DIGIT(PyUnicode_READ(kind, data, i)))
            i++;
        if (i == exponent || i < end)
            return NUMBER_TEXT;
    }

    PyObject *text = PyUnicode_Substring(line, start, end);
    if (text == NULL)
        return NUMBER_ERROR;
    PyObject *real = PyFloat_FromString(text);
    Py_DECREF(text);
    if (real == NULL)
        return NUMBER_ERROR;
    if (!isfinite(PyFloat_AS_DOUBLE(real))) {
        Py_DECREF(real);
        return NUMBER_TEXT;
    }
    *out = real;
    return NUMBER_OK;
}

/* Sets pairs[line[key_start:key_end]] = value, taking the reference to value. 0, or -1 on error. */
static int
set_pair(PyObject *pairs, PyObject *line, Py_ssize_t key_start, Py_ssize_t key_end, PyObject *value)
{
    if (value == NULL)
        return -1;
    PyObject *key = PyUnicode_Substring(line, key_start, key_end);
    int failed = key == NULL || PyDict_SetItem(pairs, key, value) < 0;
    Py_XDECREF(key);
    Py_DECREF(value);
    return failed ? -1 : 0;
}

static PyObject *
split(PyObject *Py_UNUSED(module), PyObject *line)
{
    if (!PyUnicode_Check(line)) {
        PyErr_Format(PyExc_TypeError, "split() takes a str, not %.80s", Py_TYPE(line)->tp_name);
        return NULL;
    }
    const int kind = PyUnicode_KIND(line);
    const void *data = PyUnicode_DATA(line);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    PyObject *pairs = PyDict_New();
    if (pairs == NULL)
        return NULL;

    Py_ssize_t i = 0;
    for (;;) {
        Py_UCS4 c = 0;
        while (i < n && IS_SPACE(c = PyUnicode_READ(kind, data, i)))
            i++;
        if (i == n)
            break;

        const Py_ssize_t key_start = i;
        for (; i < n; i++) {  /* the key: up to its `=` */
            c = PyUnicode_READ(kind, data, i);
            if (c == '=')
                break;
            if (c == '"' || c == '\\' || IS_SPACE(c))
                goto decline;  /* a bare key, or a quote or escape in a key */
        }
        if (i == n || i == key_start)
            goto decline;  /* a bare key last, or `=` with no key */
        const Py_ssize_t key_end = i++;

        PyObject *value;
        if (i < n && PyUnicode_READ(kind, data, i) == '"') {
            const Py_ssize_t value_start = ++i;
            for (; i < n && (c = PyUnicode_READ(kind, data, i)) != '"'; i++) {
                if (c == '\\')
                    goto decline;
            }
            if (i == n)
                goto decline;  /* never closed */
            const Py_ssize_t value_end = i++;
            if (i < n && !IS_SPACE(PyUnicode_READ(kind, data, i)))
                goto decline;  /* text glued to the closing quote */
            value = PyUnicode_Substring(line, value_start, value_end);
        }
        else {
            const Py_ssize_t value_start = i;
            for (; i < n && !IS_SPACE(c = PyUnicode_READ(kind, data, i)); i++) {
                if (c == '=' || c == '"' || c == '\\')
                    goto decline;
            }
            value = NULL;
            if (i > value_start) {
                c = PyUnicode_READ(kind, data, value_start);
                if (c == '-' || IS_DIGIT(c)) {
                    switch (read_number(line, kind, data, value_start, i, &value)) {
                    case NUMBER_DECLINE:
                        goto decline;
                    case NUMBER_ERROR:
                        goto error;
                    }
                }
            }
            if (value == NULL)  /* text, or the number's text */
                value = PyUnicode_Substring(line, value_start, i);
        }
        if (set_pair(pairs, line, key_start, key_end, value) < 0)
            goto error;
    }
    if (PyDict_GET_SIZE(pairs) > 0)
        return pairs;

decline:
    Py_DECREF(pairs);
    Py_RETURN_NONE;
error:
    Py_DECREF(pairs);
    return NULL;
}

static PyMethodDef methods[] = {
    {"split", split, METH_O,
     "split(line) -> dict | None: the pairs of a common logfmt line, or None for shipper.logfmt to read."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shipper._logfmt",
    .m_doc = "The split of a common logfmt line, in C (see shipper.logfmt).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__logfmt(void)
{
    return PyModuleDef_Init(&module);
}
