// SPDX-License-Identifier: MIT
// tests/hygiene/qt_keywords.hpp - Qt's keyword macros, as <QtCore/qobjectdefs.h>
// defines them when QT_NO_KEYWORDS is not set.
#pragma once
#define slots
#define signals public
#define emit
