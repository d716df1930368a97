/// A PowerSync backend connector for uplink: copy this file into your app.
///
/// - [UplinkConnector.fetchCredentials] gets a PowerSync token from uplink's
///   token endpoint (`GET /api/auth/token`); `null` when the app has no
///   signed-in user.
/// - [UplinkConnector.uploadData] sends the next client transaction to
///   `POST /api/data` with the database's client id, so uplink applies every
///   entry exactly once. The body is `CrudEntry.toJson()` as the SDK writes it.
///   200: done, even when entries were rejected (they are in uplink's dead
///   letters and reported to `onResults`; retrying would not change them).
///   401: the token is dropped and the upload retried with a new one.
///   Anything else: thrown, so the SDK retries the same transaction later.
library;

import 'dart:convert';

import 'package:http/http.dart' as http;
import 'package:powersync_core/powersync_core.dart';

/// Headers that authenticate the app to uplink's token endpoint, typically
/// `{'Authorization': 'Bearer <your auth provider's token>'}`; `null` when no
/// user is signed in.
typedef AuthHeaders = Future<Map<String, String>?> Function();

/// uplink's answer to an upload: counts, and every entry not simply applied.
class UplinkReport {
  final int applied, duplicates, conflicts, rejected;
  final List<Map<String, dynamic>> results;

  UplinkReport.fromJson(Map<String, dynamic> json)
      : applied = json['applied'] as int,
        duplicates = json['duplicates'] as int,
        conflicts = json['conflicts'] as int,
        rejected = json['rejected'] as int,
        results = (json['results'] as List).cast<Map<String, dynamic>>();
}

/// An upload uplink asked the client to retry (database unavailable, rate
/// limited, token expired…): the transaction stays queued.
class UplinkRetryableError implements Exception {
  final int status;
  final String body;
  UplinkRetryableError(this.status, this.body);
  @override
  String toString() => 'uplink answered $status: $body';
}

class UplinkConnector extends PowerSyncBackendConnector {
  /// uplink's base URL, e.g. `https://api.example.com`.
  final Uri url;
  final AuthHeaders authHeaders;

  /// Query parameters for the token endpoint (development identity:
  /// `{'user_id': 'alice'}`).
  final Map<String, String> tokenQuery;

  /// Called after each upload that had entries not simply applied.
  final Future<void> Function(UplinkReport report)? onResults;
  final http.Client _http;

  UplinkConnector({
    required String url,
    required this.authHeaders,
    this.tokenQuery = const {},
    this.onResults,
    http.Client? client,
  })  : url = Uri.parse(url.endsWith('/') ? url : '$url/'),
        _http = client ?? http.Client();

  @override
  Future<PowerSyncCredentials?> fetchCredentials() async {
    final headers = await authHeaders();
    if (headers == null) return null; // signed out
    final uri = url.resolve('api/auth/token').replace(
        queryParameters: tokenQuery.isEmpty ? null : tokenQuery);
    final response = await _http.get(uri, headers: headers);
    if (response.statusCode != 200) {
      throw UplinkRetryableError(response.statusCode, response.body);
    }
    final body = jsonDecode(response.body) as Map<String, dynamic>;
    return PowerSyncCredentials(
      endpoint: body['powersync_url'] as String,
      token: body['token'] as String,
      userId: body['user_id'] as String?,
      expiresAt: _expiry(body['expires_at']),
    );
  }

  /// The token shared by uploads and the attachment storage: cached by the
  /// SDK, renewed shortly before it expires.
  Future<String> token() async {
    var credentials = await getCredentialsCached();
    final expiresAt = credentials?.expiresAt;
    if (credentials == null ||
        (expiresAt != null &&
            expiresAt.difference(DateTime.now()) <
                const Duration(seconds: 30))) {
      credentials = await prefetchCredentials();
    }
    if (credentials == null) {
      throw StateError('not signed in: no token for uplink');
    }
    return credentials.token;
  }

  @override
  Future<void> uploadData(PowerSyncDatabase database) async {
    final transaction = await database.getNextCrudTransaction();
    if (transaction == null) return;
    final clientId = await database.getClientId();
    final response = await _http.post(
      url.resolve('api/data'),
      headers: {
        'Content-Type': 'application/json',
        'Authorization': 'Bearer ${await token()}',
        'PowerSync-Client-Id': clientId,
      },
      body: jsonEncode({
        'client_id': clientId,
        'batch': [for (final entry in transaction.crud) entry.toJson()],
      }),
    );
    if (response.statusCode == 200) {
      final report = UplinkReport.fromJson(
          jsonDecode(response.body) as Map<String, dynamic>);
      await transaction.complete();
      if (report.results.isNotEmpty) await onResults?.call(report);
      return;
    }
    if (response.statusCode == 401) invalidateCredentials();
    // Throwing keeps the transaction queued; the SDK retries it.
    throw UplinkRetryableError(response.statusCode, response.body);
  }

  static DateTime? _expiry(Object? value) => switch (value) {
        int seconds => DateTime.fromMillisecondsSinceEpoch(seconds * 1000),
        String text => DateTime.tryParse(text),
        _ => null,
      };
}
